"""``museforge serve --workers 2``: one port, two processes, and a client cannot tell.

Which worker serves a connection is read from the kernel: the process that holds the
server end of the client's TCP connection (``/proc/net/tcp`` and each worker's fds).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.longrunning import operations_pb2
from google.longrunning import operations_pb2_grpc as ops_grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from museforge.inference import grpc_service_pb2 as oip
from museforge.inference import grpc_service_pb2_grpc as oip_grpc
from museforge.jobs.store import JobStore
from museforge.plugins.image.digits import MODELS_DIR
from museforge.server.worker_metrics import merge
from museforge.v1 import jobs_pb2
from museforge.v1 import jobs_pb2_grpc as jobs_grpc
from museforge.v1 import museforge_pb2 as pb
from museforge.v1 import museforge_pb2_grpc as pb_grpc
from tests.core.jobs_helpers import chain_spec, write_frames
from tests.models import served_version
from tests.processes import artifacts_through_sigterm, scrape
from tests.servers import ServeProcess

PIDS = re.compile(r"(\d+) workers \(pids ([\d, ]+)\); job executor in pid (\d+)")
METRICS = re.compile(r"metrics on http://(\S+)/metrics")


def server_sockets(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def owner_of(server_port: int, client_port: int, pids: list[int]) -> int:
    """The worker holding the server end of the connection from ``client_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            ports = int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)
            if ports == (server_port, client_port):
                for pid in pids:
                    if inode in server_sockets(pid):
                        return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def client_ports(server_port: int) -> set[int]:
    """Local ports of this process's connections to the server."""
    mine = server_sockets(os.getpid())
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == server_port and fields[9] in mine:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class Workers:
    """A ``--workers 2`` server, and new connections to it with the worker that took each."""

    def __init__(self, server: ServeProcess) -> None:
        self.server = server
        text = "".join(server.output)
        found = PIDS.search(text)
        assert found, text
        self.pids = [int(p) for p in found.group(2).split(", ")]
        self.leader = int(found.group(3))
        metrics = METRICS.search(text)
        self.metrics = metrics.group(1) if metrics else ""
        self.port = int(server.address.rsplit(":", 1)[1])
        self.root = Path()

    def connect(self) -> tuple[grpc.Channel, int]:
        """A channel on a connection of its own, and the pid of the worker serving it."""
        before = client_ports(self.port)
        channel = grpc.insecure_channel(self.server.address, options=[("grpc.use_local_subchannel_pool", 1)])
        grpc.channel_ready_future(channel).result(timeout=30)
        (port,) = client_ports(self.port) - before
        return channel, owner_of(self.port, port, self.pids)

    def connect_to(self, pid: int, tries: int = 64) -> grpc.Channel:
        for _ in range(tries):
            channel, owner = self.connect()
            if owner == pid:
                return channel
            channel.close()
        raise AssertionError(f"no connection reached worker {pid} in {tries} tries")


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    root = tmp_path_factory.mktemp("workers")
    write_frames(root / "in", 1, 3)
    env = {"MUSEFORGE_DATA_DIR": str(root / "data"), "MUSEFORGE_JOB_INPUT_ROOTS": str(root / "in"),
           "MUSEFORGE_JOB_OUTPUT_ROOTS": str(root / "out"), "MUSEFORGE_PLUGINS": "effect,image"}
    with ServeProcess("--workers", "2", "--metrics-address", "127.0.0.1:0", env=env) as server:
        found = Workers(server)
        found.root = root
        yield found


def digit_request() -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name="image.digits")
    request.inputs.add(name="z", datatype="FP32", shape=[1, 100])
    request.inputs.add(name="label", datatype="INT64", shape=[1])
    request.raw_input_contents.extend([np.zeros((1, 100), np.float32).tobytes(), np.array([3]).tobytes()])
    return request


def test_calls_reach_every_worker_and_metrics_add_up(workers: Workers) -> None:
    served: dict[int, int] = {}
    replies = set()
    for _ in range(12):
        channel, pid = workers.connect()
        with channel:
            reply = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(digit_request(), timeout=30)
            replies.add(reply.raw_output_contents[0])
            listed = pb_grpc.MuseforgeStub(channel).ListGenerators(pb.ListGeneratorsRequest(), timeout=30)
            assert "image.digits" in {g.name for g in listed.generators}
        served[pid] = served.get(pid, 0) + 1
    for pid in workers.pids:  # a worker no connection reached yet gets one now
        if pid not in served:
            with workers.connect_to(pid) as channel:
                oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(digit_request(), timeout=30)
            served[pid] = 1
    assert sorted(served) == sorted(workers.pids) and len(workers.pids) == 2
    assert len(replies) == 1  # the same request gives the same bytes, whichever worker ran it

    for pid, calls in served.items():  # each worker counts only its own calls
        with workers.connect_to(pid) as channel:
            stats = oip_grpc.GRPCInferenceServiceStub(channel).ModelStatistics(
                oip.ModelStatisticsRequest(name="image.digits"), timeout=30)
        assert stats.model_stats[0].inference_stats.success.count == calls
    metrics = scrape(workers.metrics)  # the one endpoint: the sum over both
    total = sum(served.values())
    version = served_version(MODELS_DIR).name
    assert metrics[f'nv_inference_request_success{{model="image.digits",version="{version}"}}'] == total
    assert metrics['museforge_requests_total{code="OK",method="ModelInfer",'
                   'service="inference.GRPCInferenceService"}'] == total
    ready = [v for k, v in metrics.items() if k.startswith('museforge_model_ready{model="image.digits"')]
    assert ready == [1.0]


def wait_done(channel: grpc.Channel, name: str) -> jobs_pb2.JobMetadata:
    operations = ops_grpc.OperationsStub(channel)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        operation = operations.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=30)
        if operation.done:
            meta = jobs_pb2.JobMetadata()
            operation.metadata.Unpack(meta)
            return meta
        time.sleep(0.1)
    raise AssertionError(f"job {name} did not finish")


def test_a_job_submitted_through_any_worker_runs_once(workers: Workers) -> None:
    follower = next(pid for pid in workers.pids if pid != workers.leader)
    names = {}
    for pid, output in ((follower, "a/f.####.png"), (workers.leader, "b/f.####.png")):
        with workers.connect_to(pid) as channel:
            operation = jobs_grpc.JobsStub(channel).SubmitJob(
                jobs_pb2.SubmitJobRequest(job=chain_spec(1, 3, output=output)), timeout=30)
        names[pid] = operation.name
    for pid in (follower, workers.leader):  # each job read back through the other worker
        other = workers.leader if pid == follower else follower
        with workers.connect_to(other) as channel:
            meta = wait_done(channel, names[pid])
        assert meta.state == jobs_pb2.JOB_STATE_SUCCEEDED and meta.done == 3, meta
        store = JobStore(workers.root / "data" / "jobs.sqlite3")  # the shared store, read as it is
        try:
            assert [item.attempts for item in store.items(meta.id)] == [1, 1, 1]  # exactly once
        finally:
            store.close()


def test_a_cancel_through_the_follower_stops_a_queued_job(workers: Workers) -> None:
    follower = next(pid for pid in workers.pids if pid != workers.leader)
    with workers.connect_to(follower) as channel:
        jobs = jobs_grpc.JobsStub(channel)
        first = jobs.SubmitJob(jobs_pb2.SubmitJobRequest(job=chain_spec(1, 3, output="c/f.####.png")),
                               timeout=30).name
        second = jobs.SubmitJob(jobs_pb2.SubmitJobRequest(job=chain_spec(1, 3, output="d/f.####.png")),
                                timeout=30).name
        ops_grpc.OperationsStub(channel).CancelOperation(operations_pb2.CancelOperationRequest(name=second),
                                                         timeout=30)
        assert wait_done(channel, first).state == jobs_pb2.JOB_STATE_SUCCEEDED
        cancelled = wait_done(channel, second)
    assert cancelled.state == jobs_pb2.JOB_STATE_CANCELLED


def test_sigterm_to_the_parent_drains_every_worker_and_exits_zero(tmp_path: Path) -> None:
    env = {"MUSEFORGE_DATA_DIR": str(tmp_path / "data"), "MUSEFORGE_PLUGINS": "mesh"}
    with ServeProcess("--workers", "2", env=env) as server:
        assert server.proc is not None
        parent = Workers(server)
        follower = next(pid for pid in parent.pids if pid != parent.leader)

        def in_flight() -> Iterator[pb.GenerateEvent]:
            with parent.connect_to(follower) as channel:
                request = pb.GenerateRequest(generator="mesh.props", count=4, format="glb", seed=3)
                request.parameters.update({"resolution": 96, "lods": 2})
                yield from pb_grpc.MuseforgeStub(channel).StreamGenerate(request, timeout=120)

        # finished inside the grace period
        assert artifacts_through_sigterm(server.proc, in_flight) == 4
        assert server.proc.wait(60) == 0
        for pid in parent.pids:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert any("draining" in line for line in server.output)


def test_a_model_load_or_unload_is_refused_rather_than_reaching_one_worker(workers: Workers) -> None:
    for pid in workers.pids:  # whichever worker takes it
        with workers.connect_to(pid) as channel:
            stub = oip_grpc.GRPCInferenceServiceStub(channel)
            for method, request in ((stub.RepositoryModelUnload,
                                     oip.RepositoryModelUnloadRequest(model_name="image.digits")),
                                    (stub.RepositoryModelLoad,
                                     oip.RepositoryModelLoadRequest(model_name="image.digits"))):
                with pytest.raises(grpc.RpcError) as refused:
                    method(request)
                assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert "restart the server to change its models" in (refused.value.details() or "")
            assert stub.ModelReady(oip.ModelReadyRequest(name="image.digits")).ready  # nothing changed


def test_a_taken_metrics_port_stops_the_start_before_any_worker_loads_a_model(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "museforge.cli", "serve", "--address", "127.0.0.1:0", "--workers", "2",
             "--metrics-address", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=300,
            env={**os.environ, "MUSEFORGE_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 1, result.stderr
    assert f"could not serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "ready on" not in result.stderr  # no worker got as far as loading a model


def test_merged_metrics_add_up_what_each_worker_counts_and_keep_what_they_share() -> None:
    texts = []
    for calls, ready in ((3, 1.0), (5, 0.0)):
        registry = CollectorRegistry()
        Counter("museforge_requests", "calls", ["code"], registry=registry).labels("OK").inc(calls)
        Gauge("museforge_model_ready", "ready", ["model"], registry=registry).labels("m").set(ready)
        Histogram("museforge_request_duration_seconds", "latency", buckets=(0.1, 1.0),
                  registry=registry).observe(0.5 * calls / 5)
        texts.append(generate_latest(registry).decode())
    merged = CollectorRegistry()

    class Merged:
        def collect(self) -> list[Any]:
            return merge(texts)

    merged.register(Merged())
    lines = dict(line.rsplit(" ", 1) for line in generate_latest(merged).decode().splitlines()
                 if line and not line.startswith("#"))
    assert float(lines['museforge_requests_total{code="OK"}']) == 8
    assert float(lines['museforge_model_ready{model="m"}']) == 0  # ready only where every worker is
    assert float(lines['museforge_request_duration_seconds_bucket{le="0.1"}']) == 0
    assert float(lines['museforge_request_duration_seconds_bucket{le="1.0"}']) == 2
    assert float(lines["museforge_request_duration_seconds_count"]) == 2
    created = [float(v) for k, v in lines.items() if k.startswith("museforge_requests_created")]
    assert len(created) == 1  # one series, the earliest of the two

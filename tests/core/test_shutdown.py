"""SIGTERM: in-flight calls finish, new ones are refused, a running job is kept and resumes, exit 0."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import grpc

from museforge.client import Client
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import chain_spec, serve_jobs, write_frames


def test_sigterm_drains_calls_keeps_the_job_and_exits_zero(tmp_path: Path) -> None:
    write_frames(tmp_path / "in", 1, 24, size=(256, 192))
    outcome: dict[str, object] = {}
    with serve_jobs(tmp_path) as server:
        assert server.proc is not None
        with Client(server.address, timeout=120) as client:
            job = client.submit_job(chain_spec(1, 24, output="kept/f.####.png")).name
            for event in client.watch_job(job):
                if event.WhichOneof("event") == "item":
                    break  # the job is under way

            running = threading.Event()

            def in_flight() -> None:
                with Client(server.address, timeout=120) as other:
                    events = other.stream_generate(
                        "mesh.props", {"resolution": 96, "lods": 2}, seed=3, count=4, fmt="glb"
                    )
                    artifacts = 0
                    for event in events:
                        running.set()  # the server has the call (its first event is the seed)
                        artifacts += event.WhichOneof("event") == "artifact"
                    outcome["artifacts"] = artifacts

            caller = threading.Thread(target=in_flight)
            caller.start()
            # A fixed sleep raced a busy machine: the call could still be connecting at SIGTERM.
            assert running.wait(60)
            server.proc.send_signal(signal.SIGTERM)
            caller.join(60)
            assert outcome.get("artifacts") == 4  # finished inside the grace period
            assert server.proc.wait(60) == 0
            try:
                client.plugins()
                refused = None
            except grpc.RpcError as exc:
                refused = exc.code()
            assert refused == grpc.StatusCode.UNAVAILABLE
        assert any("draining" in line for line in server.output)

    with serve_jobs(tmp_path) as server, Client(server.address, timeout=120) as client:
        finished = client.wait_job(job, 300)
        meta = jobs_pb2.JobMetadata()
        finished.metadata.Unpack(meta)
        assert meta.state == jobs_pb2.JOB_STATE_SUCCEEDED and meta.done == 24
    assert len(list((tmp_path / "out" / "kept").glob("f.*.png"))) == 24

"""SIGTERM: in-flight calls finish, new ones are refused, a running job is kept and resumes, exit 0."""

from __future__ import annotations

import os
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from museforge.client import Client
from museforge.v1 import jobs_pb2
from museforge.v1 import museforge_pb2 as pb
from tests.core.jobs_helpers import chain_spec, serve_jobs, write_frames
from tests.processes import artifacts_through_sigterm
from tests.servers import ServeProcess


def follow(address: str, job: str) -> None:
    """Watch the job until the stream ends (the server going away ends it)."""
    with Client(address, timeout=120) as watching:
        try:
            for _ in watching.watch_job(job):
                pass
        except grpc.RpcError:
            pass


def test_sigterm_drains_calls_keeps_the_job_and_exits_zero(tmp_path: Path) -> None:
    write_frames(tmp_path / "in", 1, 24, size=(256, 192))
    with serve_jobs(tmp_path) as server:
        assert server.proc is not None
        with Client(server.address, timeout=120) as client:
            job = client.submit_job(chain_spec(1, 24, output="kept/f.####.png")).name
            for event in client.watch_job(job):
                if event.WhichOneof("event") == "item":
                    break  # the job is under way
            # A watcher still following the job: its stream stays open through the drain, and the
            # executor once went on rendering for as long.
            watcher = threading.Thread(target=follow, args=(server.address, job), daemon=True)
            watcher.start()

            def in_flight() -> Iterator[pb.GenerateEvent]:
                with Client(server.address, timeout=120) as other:
                    yield from other.stream_generate(
                        "mesh.props", {"resolution": 96, "lods": 2}, seed=3, count=4, fmt="glb"
                    )

            # finished inside the grace period
            assert artifacts_through_sigterm(server.proc, in_flight) == 4
            assert server.proc.wait(60) == 0
            watcher.join(30)
            written = len(list((tmp_path / "out" / "kept").glob("f.*.png")))
            assert written < 24  # stopped at SIGTERM, not rendered on through the drain
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


HUNG_PLUGIN = '''
import time
from pydantic import BaseModel
import museforge


class NoParams(BaseModel):
    pass


def forever(ctx, params, seed, count):
    while True:  # never looks at ctx
        time.sleep(0.5)
    yield


@museforge.hookimpl
def register_generators(register):
    register(museforge.Generator("hung.forever", "image", NoParams, forever, ("png",), timeout=1))


def stuck(ctx, params, inputs, seed):
    while True:  # never looks at ctx either
        time.sleep(0.5)
    yield


@museforge.hookimpl
def register_effects(register):
    register(museforge.Effect("hung.stuck", "image", NoParams, stuck, ("png",)))
'''


def install_hung_plugin(site: Path) -> None:
    """A distribution as an installer leaves it: the module and its entry point's metadata."""
    info = site / "hung_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "hung_plugin.py").write_text(HUNG_PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hung-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [museforge]
        hung = hung_plugin
    """))


def test_sigterm_exits_after_the_grace_although_a_plugin_never_returns(tmp_path: Path) -> None:
    install_hung_plugin(tmp_path / "site")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
           "MUSEFORGE_DATA_DIR": str(tmp_path / "data"), "MUSEFORGE_GRACE_SECONDS": "1"}
    with ServeProcess("--plugins", "hung", env=env) as server:
        assert server.proc is not None
        with Client(server.address, timeout=30) as client:
            with pytest.raises(grpc.RpcError) as caught:
                client.generate("hung.forever", {})
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        server.proc.terminate()
        try:
            code = server.proc.wait(60)
        except subprocess.TimeoutExpired:  # before: joined the plugin's thread at exit, for ever
            server.proc.kill()
            raise AssertionError("no exit after SIGTERM:\n" + "".join(server.output)) from None
    assert code == 0, "".join(server.output)
    said = "".join(server.output)
    assert "stopping with 1 plugin run still going (1 of generator hung.forever)" in said


def test_sigterm_exits_although_a_job_frame_never_returns(tmp_path: Path) -> None:
    from museforge.v1 import jobs_pb2
    from tests.core.jobs_helpers import write_frames
    from tests.core.test_jobs_service import meta_of

    install_hung_plugin(tmp_path / "site")
    write_frames(tmp_path / "in", 1, 2)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
           "MUSEFORGE_DATA_DIR": str(tmp_path / "data"), "MUSEFORGE_GRACE_SECONDS": "1",
           "MUSEFORGE_JOB_INPUT_ROOTS": str(tmp_path / "in"),
           "MUSEFORGE_JOB_OUTPUT_ROOTS": str(tmp_path / "out")}
    with ServeProcess("--plugins", "hung", env=env) as server:
        assert server.proc is not None
        with Client(server.address, timeout=30) as client:
            spec = jobs_pb2.JobSpec(output_pattern="o.####.png")
            spec.steps.add(effect="hung.stuck")
            spec.input.pattern, spec.input.first_frame, spec.input.last_frame = "sh010.####.png", 1, 2
            name = client.submit_job(spec).name
            waited = time.monotonic()
            while meta_of(client.get_job(name)).state != jobs_pb2.JOB_STATE_RUNNING:
                assert time.monotonic() - waited < 30
                time.sleep(0.1)
            time.sleep(1.0)  # the frames are in the plugin's loop now
        server.proc.terminate()
        try:
            code = server.proc.wait(60)
        except subprocess.TimeoutExpired:  # before: the job's frame threads were joined at exit, for ever
            server.proc.kill()
            raise AssertionError("no exit after SIGTERM:\n" + "".join(server.output)) from None
    assert code == 0, "".join(server.output)

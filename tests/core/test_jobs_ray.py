"""The same job on a real local Ray (Ray Data over an actor pool) and on the local executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from museforge.client import Client
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import chain_spec, job_settings, write_frames
from tests.servers import ServerThread

pytest.importorskip("ray")

FRAMES = (1, 6)


def run(root: Path, data: str, output: str, **settings: object) -> jobs_pb2.JobMetadata:
    with (
        ServerThread(job_settings(root, data_dir=str(root / data), **settings)) as server,
        Client(server.address, timeout=120) as client,
    ):
        operation = client.wait_job(client.submit_job(chain_spec(*FRAMES, output=output)).name, 600)
        meta = jobs_pb2.JobMetadata()
        operation.metadata.Unpack(meta)
        return meta


def test_ray_outputs_equal_the_local_executors(tmp_path: Path) -> None:
    write_frames(tmp_path / "in", *FRAMES, size=(128, 96))
    (tmp_path / "out").mkdir()
    local = run(tmp_path, "data-local", "local/f.####.png")
    on_ray = run(tmp_path, "data-ray", "ray/f.####.png", job_executor="ray", ray_workers=2, ray_num_cpus=2)
    assert local.state == on_ray.state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert on_ray.executor == "ray" and local.executor == "local" and on_ray.done == FRAMES[1]
    for path in sorted((tmp_path / "out" / "local").iterdir()):
        assert (tmp_path / "out" / "ray" / path.name).read_bytes() == path.read_bytes(), path.name

"""The same job on a real local Ray (Ray Data over an actor pool) and on the local executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from museforge.client import Client
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import chain_spec, job_settings, write_frames
from tests.core.test_video import make_video
from tests.servers import ServerThread

pytest.importorskip("ray")

FRAMES = (1, 6)


def video_spec(output: str) -> jobs_pb2.JobSpec:
    spec = jobs_pb2.JobSpec(output_pattern=output, seed=3)
    spec.steps.add(effect="effect.denoise").parameters.update({"sigma": 15})
    spec.input.video, spec.input.frames_per_item = "take.mp4", 4
    return spec


def run(root: Path, data: str, prefix: str, **settings: object) -> list[jobs_pb2.JobMetadata]:
    """A frame job and a video job on one server (one Ray start), their metadata once done."""
    metas = []
    with (
        ServerThread(job_settings(root, data_dir=str(root / data), **settings)) as server,
        Client(server.address, timeout=120) as client,
    ):
        for spec in (chain_spec(*FRAMES, output=f"{prefix}/f.####.png"), video_spec(f"{prefix}/take.mp4")):
            operation = client.wait_job(client.submit_job(spec).name, 600)
            meta = jobs_pb2.JobMetadata()
            operation.metadata.Unpack(meta)
            metas.append(meta)
    return metas


def test_ray_outputs_equal_the_local_executors(tmp_path: Path) -> None:
    write_frames(tmp_path / "in", *FRAMES, size=(128, 96))
    make_video(tmp_path / "in" / "take.mp4", frames=12)
    (tmp_path / "out").mkdir()
    local, local_video = run(tmp_path, "data-local", "local")
    on_ray, ray_video = run(tmp_path, "data-ray", "ray", job_executor="ray", ray_workers=2, ray_num_cpus=2)
    assert local.state == on_ray.state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert on_ray.executor == "ray" and local.executor == "local" and on_ray.done == FRAMES[1]
    for path in sorted((tmp_path / "out" / "local").iterdir()):
        assert (tmp_path / "out" / "ray" / path.name).read_bytes() == path.read_bytes(), path.name
    # The video's ranges ran on the actors, the join here: the same bytes as the local executor's.
    assert local_video.state == ray_video.state == jobs_pb2.JOB_STATE_SUCCEEDED and ray_video.done == 4
    assert [p.name for p in (tmp_path / "out" / "ray").iterdir() if p.suffix == ".mp4"] == ["take.mp4"]

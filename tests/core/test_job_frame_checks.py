"""Batch jobs through a real server: a step making several images refused at submission, the output's
extension deciding the format written, printf and Houdini frame patterns, damaged frames named."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from museforge.client import Client, field_violations
from museforge.engine.generator import Media
from museforge.jobs.paths import frame_path, has_frame_run
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import write_frames
from tests.core.test_video import make_video
from tests.servers import ServerThread

EXR_MAGIC = b"\x76\x2f\x31\x01"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("job-frames")
    write_frames(root / "in", 1001, 1003)
    make_video(root / "in" / "clip.mp4", frames=4, audio=False)
    (root / "out").mkdir()
    return root


def one_step(effect: str, parameters: dict[str, object], output: str, **inputs: object) -> jobs_pb2.JobSpec:
    spec = jobs_pb2.JobSpec(output_pattern=output, seed=5)
    spec.steps.add(effect=effect).parameters.update(parameters)
    for name, value in inputs.items():
        setattr(spec.input, name, value)
    return spec


def refusal(jobs: Client, spec: jobs_pb2.JobSpec) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as caught:
        jobs.submit_job(spec)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    return dict(field_violations(caught.value))


def finished_items(jobs: Client, spec: jobs_pb2.JobSpec) -> list[jobs_pb2.JobItem]:
    done = jobs.wait_job(jobs.submit_job(spec).name, 120)
    assert done.done
    return list(jobs.job_items(done.name))


@pytest.mark.parametrize("inputs", [
    {"pattern": "sh010.####.png", "first_frame": 1001, "last_frame": 1003},
    {"video": "clip.mp4"},
], ids=["frames", "video"])
def test_a_step_making_several_images_of_a_frame_is_refused_at_submission(
    jobs: Client, inputs: dict[str, object]
) -> None:
    output = "sk/clip.mp4" if "video" in inputs else "sk/s.####.png"
    found = refusal(jobs, one_step("effect.sketch", {"count": 2}, output, **inputs))
    assert "makes 2" in found["job.steps[0].parameters.count"], found
    second = one_step("effect.sketch", {}, output, **inputs)
    second.steps.add(effect="effect.sketch").parameters.update({"count": 3})
    assert "job.steps[1].parameters.count" in refusal(jobs, second)


def test_a_frame_pattern_may_be_written_as_printf_and_houdini_do(jobs: Client, root: Path) -> None:
    assert frame_path("sh010.%04d.png", 7) == "sh010.0007.png"
    assert frame_path("sh010.%d.png", 1001) == "sh010.1001.png"
    assert frame_path("sh010.$F4.exr", 12) == "sh010.0012.exr"
    assert not has_frame_run("a.%04d.%04d.png") and not has_frame_run("a.%04d.#.png")
    spec = one_step("effect.denoise", {"sigma": 10}, "printf/sh010.$F4.png",
                    pattern="sh010.%04d.png", first_frame=1001, last_frame=1002)
    items = finished_items(jobs, spec)
    assert [i.state for i in items] == [jobs_pb2.ITEM_STATE_DONE] * 2, items
    assert sorted(p.name for p in (root / "out" / "printf").iterdir()) == ["sh010.1001.png", "sh010.1002.png"]
    bad = one_step("effect.denoise", {}, "printf/x.####.png", pattern="sh010.%4d.png", first_frame=1,
                   last_frame=2)
    assert "%04d" in refusal(jobs, bad)["job.input.pattern"]


@pytest.fixture(scope="module")
def damaged(root: Path, running: ServerThread) -> list[jobs_pb2.JobItem]:
    """A .exr sequence: frames 1, 2 and 6 EXR, 3 empty, 4 a JPEG named .exr, 5 a directory."""
    from museforge import encode_exr

    folder = root / "in" / "bad"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for frame in (1, 2, 6):
        linear = Media("image", rng.random((24, 32, 3)).astype(np.float32), 0, colorspace="linear")
        (folder / f"b.{frame:04d}.exr").write_bytes(encode_exr(linear, {}))
    (folder / "b.0003.exr").write_bytes(b"")
    jpeg = io.BytesIO()
    Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(jpeg, "JPEG")
    (folder / "b.0004.exr").write_bytes(jpeg.getvalue())
    (folder / "b.0005.exr").mkdir()
    with Client(running.address, timeout=60) as client:
        return finished_items(client, one_step("effect.stylize", {"strength": 0}, "bad/b.####.exr",
                                               pattern="bad/b.####.exr", first_frame=1, last_frame=6))


def test_each_output_holds_the_format_its_extension_names(
    damaged: list[jobs_pb2.JobItem], root: Path
) -> None:
    done = [i.frame for i in damaged if i.state == jobs_pb2.ITEM_STATE_DONE]
    assert done == [1, 2, 4, 6], damaged
    for frame in done:  # the JPEG frame too: a file named .exr is an OpenEXR file
        assert (root / "out" / "bad" / f"b.{frame:04d}.exr").read_bytes()[:4] == EXR_MAGIC, frame


def test_an_empty_frame_and_a_directory_are_called_what_they_are(damaged: list[jobs_pb2.JobItem]) -> None:
    errors = {i.frame: i.error for i in damaged if i.state == jobs_pb2.ITEM_STATE_FAILED}
    assert set(errors) == {3, 5}, damaged
    assert errors[3] == "bad/b.0003.exr is empty (0 bytes)"
    assert errors[5] == "input bad/b.0005.exr is a directory, not a file"

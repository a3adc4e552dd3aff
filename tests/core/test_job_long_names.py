"""Job paths whose names no file system takes (over 255 bytes) are refused at submission, naming
the field, on a real server: frame lists, patterns, outputs and videos."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from museforge.client import Client, field_violations
from museforge.jobs.paths import PathRefused, Sandbox
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import write_frames
from tests.core.test_video import make_video

LONG = "y" * 300


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("job-long-names")
    write_frames(root / "in", 1, 3)
    make_video(root / "in" / "clip.mp4", frames=4, audio=False)
    (root / "out").mkdir()
    return root


def sketch(output: str, **inputs: object) -> jobs_pb2.JobSpec:
    spec = jobs_pb2.JobSpec(output_pattern=output, seed=3)
    spec.steps.add(effect="effect.sketch")
    for name, value in inputs.items():
        if name == "paths":
            spec.input.paths.extend(value)
        else:
            setattr(spec.input, name, value)
    return spec


@pytest.mark.parametrize(("spec", "field"), [
    (sketch("long/x.####.png", paths=[f"{LONG}.png"]), "job.input.paths[0]"),
    (sketch("long/x.####.png", paths=["sh010.0001.png", f"{LONG}/a.png"]), "job.input.paths[1]"),
    (sketch("long/x.####.png", pattern=f"{LONG}.####.png", first_frame=1, last_frame=3), "job.input.pattern"),
    (sketch(f"long/{LONG}.####.png", pattern="sh010.####.png", first_frame=1, last_frame=3),
     "job.output_pattern"),
    # Two-byte characters: 150 of them are 300 bytes, though only 150 characters.
    (sketch("long/" + "é" * 150 + ".####.png", pattern="sh010.####.png", first_frame=1, last_frame=3),
     "job.output_pattern"),
    (sketch(f"{LONG}.mp4", video="clip.mp4"), "job.output_pattern"),
    (sketch("long.mp4", video=f"{LONG}.mp4"), "job.input.video"),
], ids=["paths", "a-folder-in-paths", "pattern", "output", "two-byte-output", "video-output", "video-input"])
def test_a_name_over_255_bytes_is_invalid_argument_naming_its_field(
    jobs: Client, spec: jobs_pb2.JobSpec, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        jobs.submit_job(spec)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    found = dict(field_violations(caught.value))
    assert field in found, found
    said = r"a name of 30\d bytes .*; a file or folder name is at most 255 bytes"
    assert re.search(said, found[field]), found


@pytest.mark.parametrize(("output", "inputs"), [
    ("o" * 237 + ".####.png", {"pattern": "sh010.####.png", "first_frame": 1, "last_frame": 3}),
    ("v" * 246 + ".mp4", {"video": "clip.mp4"}),
], ids=["frames", "video"])
def test_an_output_name_its_temporary_twin_would_make_too_long_is_refused(
    jobs: Client, output: str, inputs: dict[str, object]
) -> None:
    """An output is written as .<name>.<random>.part, then renamed: that name must fit too."""
    with pytest.raises(grpc.RpcError) as caught:
        jobs.submit_job(sketch(output, **inputs))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "an output's is at most 240" in dict(field_violations(caught.value))["job.output_pattern"]


def test_the_longest_names_allowed_still_make_a_job(jobs: Client, root: Path) -> None:
    source, output = "z" * 251 + ".png", "w" * 236 + ".png"  # 255 and 240 bytes
    (root / "in" / source).write_bytes((root / "in" / "sh010.0001.png").read_bytes())
    done = jobs.wait_job(jobs.submit_job(sketch(output, paths=[source])).name, 120)
    assert done.done and not done.HasField("error")
    assert [item.state for item in jobs.job_items(done.name)] == [jobs_pb2.ITEM_STATE_DONE]
    assert (root / "out" / output).is_file()


def test_a_path_too_long_in_all_is_refused_without_an_oserror(tmp_path: Path) -> None:
    """Every name fits, but the whole path is past what the file system takes (4095 bytes)."""
    sandbox = Sandbox.of([tmp_path], [tmp_path])
    deep = "/".join(["d" * 200] * 21) + "/a.png"  # 4,226 bytes
    with pytest.raises(PathRefused, match="at most 4,095") as caught:
        sandbox.input_path(deep)
    assert not caught.value.permission

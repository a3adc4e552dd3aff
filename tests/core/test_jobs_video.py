"""Batch jobs over a video file, through a real server: ranges of frames as items, joined into one
video with the source's rate, timecode and sound; a frame range; refusals at submission naming
the field; a cancel and a failure that leave nothing behind."""

from __future__ import annotations

import dataclasses
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import grpc
import numpy as np
import pytest

from museforge.client import Client, field_violations
from museforge.engine.catalogue import EffectInput
from museforge.engine.codecs.video import VideoInfo, VideoWriter, probe, read_frames
from museforge.engine.codecs.video_frames import pixels_of, png_of
from museforge.jobs.paths import Sandbox
from museforge.jobs.store import Item, ItemState
from museforge.jobs.video_items import VideoJob, join_item
from museforge.v1 import jobs_pb2
from tests.core.test_video import make_video
from tests.servers import ServerThread

FRAMES = 100
SEED = 11


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("video-jobs")
    (root / "in").mkdir()
    (root / "out").mkdir()
    make_video(root / "in" / "take.mp4", frames=FRAMES, timecode="01:00:00:00")
    make_video(root / "in" / "mute.mov", frames=30, audio=False, codec="prores_ks")
    make_video(root / "in" / "portrait.mp4", frames=12, audio=False, rotation=90)
    make_video(root / "in" / "dot.mp4", frames=4, audio=False, pictures=[np.zeros((1, 1, 3), np.uint8)] * 4,
               pix_fmt="yuv444p")  # 4:4:4: an encoder takes a single pixel
    return root


def video_spec(
    output: str, video: str = "take.mp4", per_item: int = 32, **fields: object
) -> jobs_pb2.JobSpec:
    spec = jobs_pb2.JobSpec(output_pattern=output, seed=SEED)
    spec.steps.add(effect="effect.denoise").parameters.update({"sigma": 15})
    spec.input.video, spec.input.frames_per_item = video, per_item
    for name, value in fields.items():
        setattr(spec.input, name, value)
    return spec


def finished(jobs: Client, spec: jobs_pb2.JobSpec) -> tuple[jobs_pb2.JobMetadata, list[jobs_pb2.JobItem]]:
    done = jobs.wait_job(jobs.submit_job(spec).name, 300)
    assert done.done
    meta = jobs_pb2.JobMetadata()
    done.metadata.Unpack(meta)
    return meta, list(jobs.job_items(done.name))


def denoised(running: ServerThread, source: VideoInfo, first: int, count: int) -> list[np.ndarray]:
    """The effect's own pixels for those frames, called directly: what the job's video must show."""
    engine = running.running.engine  # type: ignore[union-attr]
    frames = list(read_frames(source))[first:first + count]
    return [pixels_of(engine.apply_media("effect.denoise", {"sigma": 15}, [EffectInput(png_of(f), "f")],
                                         seed=SEED)[0]) for f in frames]


def encoding_error(frames: list[np.ndarray], expected: list[np.ndarray], tmp: Path) -> tuple[float, float]:
    """The worst mean error of ``frames`` against ``expected``, and of ``expected`` through one
    encoder of their own (what H.264 at this size costs anyway)."""
    source = dataclasses.replace(probe(make_video(tmp / "ref-src.mp4", frames=2, audio=False)))
    with VideoWriter(tmp / "ref.mp4", source) as writer:
        for frame in expected:
            writer.write(frame)
    once = list(read_frames(probe(tmp / "ref.mp4")))

    def worst(got: list[np.ndarray]) -> float:
        pairs = zip(got, expected, strict=True)
        return max(float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in pairs)

    return worst(frames), worst(once)


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream: Any = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


def test_a_video_runs_in_ranges_and_is_joined_with_its_rate_timecode_and_sound(
    jobs: Client, running: ServerThread, root: Path, tmp_path: Path
) -> None:
    meta, items = finished(jobs, video_spec("clean/take.mp4"))
    assert meta.state == jobs_pb2.JOB_STATE_SUCCEEDED and meta.total == 5  # 4 ranges of up to 32, the join
    assert [(i.frame, i.last_frame) for i in items] == [(0, 31), (32, 63), (64, 95), (96, 99), (0, 99)]
    assert items[-1].output == "clean/take.mp4" and items[0].output == "clean/.take.mp4.parts/000000000.mp4"
    out = root / "out" / "clean"
    assert [p.name for p in out.iterdir()] == ["take.mp4"]  # the parts are gone, nothing half-written
    made = probe(out / "take.mp4")
    assert (made.fps, made.timecode, made.codec, made.audio) == (Fraction(24), "01:00:00:00", "h264", "aac")
    frames = list(read_frames(made))
    assert len(frames) == FRAMES
    assert abs(audio_seconds(out / "take.mp4") - FRAMES / 24) < 0.05
    expected = denoised(running, probe(root / "in" / "take.mp4"), 0, FRAMES)
    joined, once = encoding_error(frames, expected, tmp_path)
    assert joined < 1.1 * once, (joined, once)  # the effect's pixels, as one encoding would keep them
    # Each frame is the right one: against its neighbour's pixels it is far worse.
    shifted = np.abs(frames[40].astype(int) - expected[41].astype(int)).mean()
    assert shifted > 2 * joined


def test_a_frame_range_starts_its_timecode_and_sound_at_its_first_frame(
    jobs: Client, running: ServerThread, root: Path, tmp_path: Path
) -> None:
    meta, items = finished(jobs, video_spec("cut/take.mov", per_item=20, first_frame=10, last_frame=57))
    assert meta.state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert [(i.frame, i.last_frame) for i in items] == [(10, 29), (30, 49), (50, 57), (10, 57)]
    made = probe(root / "out" / "cut" / "take.mov")
    assert (made.codec, made.timecode, made.audio) == ("prores", "01:00:00:10", "aac")
    frames = list(read_frames(made))
    assert len(frames) == 48
    assert abs(audio_seconds(root / "out" / "cut" / "take.mov") - 48 / 24) < 0.05
    expected = denoised(running, probe(root / "in" / "take.mp4"), 10, 48)
    joined, once = encoding_error(frames, expected, tmp_path)
    assert joined < 1.1 * once, (joined, once)


def test_the_same_job_twice_writes_the_same_bytes(jobs: Client, root: Path) -> None:
    for name in ("again-a", "again-b"):
        meta, _ = finished(jobs, video_spec(f"{name}/mute.mp4", video="mute.mov", per_item=7))
        assert meta.state == jobs_pb2.JOB_STATE_SUCCEEDED
    first, second = ((root / "out" / n / "mute.mp4").read_bytes() for n in ("again-a", "again-b"))
    assert first == second
    assert len(list(read_frames(probe(root / "out" / "again-a" / "mute.mp4")))) == 30


def first_rotation(path: Path) -> int:
    with av.open(str(path)) as container:
        return int(next(container.decode(video=0)).rotation)


def test_a_rotated_video_keeps_its_rotation(jobs: Client, root: Path) -> None:
    source = root / "in" / "portrait.mp4"
    assert probe(source).rotation == 90 and first_rotation(source) == 90
    meta, _ = finished(jobs, video_spec("turned/portrait.mp4", video="portrait.mp4", per_item=5))
    assert meta.state == jobs_pb2.JOB_STATE_SUCCEEDED
    made = root / "out" / "turned" / "portrait.mp4"
    assert first_rotation(made) == 90 and (probe(made).width, probe(made).height) == (64, 48)


def refused(jobs: Client, spec: jobs_pb2.JobSpec, field: str, words: str,
            code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        jobs.submit_job(spec)
    assert caught.value.code() == code
    found = dict(field_violations(caught.value))
    assert words in found.get(field, ""), found


def test_bad_video_jobs_are_refused_at_submission_naming_the_field(jobs: Client, root: Path) -> None:
    (root / "in" / "not-a-video.mp4").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    refused(jobs, video_spec("x/a.mp4", video="not-a-video.mp4"), "job.input.video", "a still image")
    refused(jobs, video_spec("x/a.mp4", video="dot.mp4"), "job.input.video", "at least 2x2")
    refused(jobs, video_spec("x/a.mp4", video="missing.mp4"), "job.input.video", "not found")
    refused(jobs, video_spec("x/a.avi"), "job.output_pattern", ".mp4 (H.264 in MP4)")
    refused(jobs, video_spec("x/a.mp4", last_frame=FRAMES), "job.input.last_frame", f"{FRAMES - 1}")
    refused(jobs, video_spec("x/a.mp4", first_frame=-1), "job.input.first_frame", "0 to 99")
    refused(jobs, video_spec("x/a.mp4", per_item=10**6), "job.input.frames_per_item", "at most")
    refused(jobs, video_spec("/tmp/elsewhere/a.mp4"), "job.output_pattern", "outside the output roots",
            grpc.StatusCode.PERMISSION_DENIED)
    refused(jobs, video_spec("x/a.mp4", video="../../etc/passwd"), "job.input.video", "climbs",
            grpc.StatusCode.PERMISSION_DENIED)
    bad = video_spec("x/a.mp4")
    bad.format = "png"
    refused(jobs, bad, "job.format", "leave it empty")
    bad = video_spec("x/a.mp4")
    bad.input.pattern = "sh.####.png"
    refused(jobs, bad, "job.input", "not more")
    bad = video_spec("x/a.mp4")
    bad.steps.add(effect="effect.interpolate")
    refused(jobs, bad, "job.steps[1].effect", "takes 2 inputs")
    assert not (root / "out" / "x").exists()


def test_a_cancelled_video_job_leaves_no_parts_and_no_output(jobs: Client, root: Path) -> None:
    name = jobs.submit_job(video_spec("cancelled/take.mp4", per_item=4)).name
    deadline = time.monotonic() + 60
    while not (root / "out" / "cancelled" / ".take.mp4.parts").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    jobs.cancel_job(name)
    done = jobs.wait_job(name, 120)
    meta = jobs_pb2.JobMetadata()
    done.metadata.Unpack(meta)
    assert meta.state == jobs_pb2.JOB_STATE_CANCELLED and meta.skipped >= 1
    assert list((root / "out" / "cancelled").iterdir()) == []


def test_a_video_changed_under_a_queued_job_fails_its_ranges_and_is_not_joined(
    jobs: Client, root: Path
) -> None:
    make_video(root / "in" / "swapped.mp4", frames=24, audio=False)
    blocker = jobs.submit_job(video_spec("blocker/take.mp4", per_item=8)).name  # one job runs at a time
    name = jobs.submit_job(video_spec("swapped/out.mp4", video="swapped.mp4", per_item=8)).name
    (root / "in" / "swapped.mp4").write_bytes(b"not a video any more")
    jobs.wait_job(blocker, 300)
    done = jobs.wait_job(name, 300)
    meta = jobs_pb2.JobMetadata()
    done.metadata.Unpack(meta)
    items = list(jobs.job_items(name))
    assert meta.state == jobs_pb2.JOB_STATE_FAILED and meta.failed == 4
    assert all("swapped.mp4" in i.error for i in items[:3])
    assert items[-1].error.startswith("not joined: 3 of 3 ranges were not done (the first: frames 0-7)")
    assert not (root / "out" / "swapped").exists() or list((root / "out" / "swapped").iterdir()) == []


def test_joining_again_after_a_crash_between_the_join_and_its_record_is_done(tmp_path: Path) -> None:
    """The parts were joined and removed, then the server died before recording it: the output is
    recognised as the join's, not redone from parts that are gone."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    source = make_video(tmp_path / "in" / "v.mp4", frames=12, audio=False)
    make_video(tmp_path / "out" / "v.mp4", frames=12, audio=False)  # as the join left it
    sandbox = Sandbox.of([tmp_path / "in"], [tmp_path / "out"])
    job = VideoJob("v.mp4", "v.mp4", 0, 11, 6)
    ranges = [Item("j", i, f, "v.mp4", job.part(f), ItemState.DONE, "", 1, i) for i, f in enumerate((0, 6))]
    assert join_item(sandbox, job, ranges) == (ItemState.DONE, "")
    (tmp_path / "out" / "v.mp4").write_bytes(source.read_bytes()[:500])  # not a whole join: parts needed
    state, error = join_item(sandbox, job, ranges)
    assert state == ItemState.FAILED and "000000000.mp4 is missing" in error


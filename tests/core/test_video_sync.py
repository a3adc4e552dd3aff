"""A video whose picture starts after its sound (a stream start of 0.48 s, the sound at 0) keeps the
two in sync wherever it is written: one call, the command line, a batch job's join, an edit."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from museforge.client import Client
from museforge.engine.codecs.video import probe, read_frames
from museforge.engine.effect import Clip
from museforge.engine.video_edit import EditShot, rendered
from museforge.v1 import jobs_pb2
from tests.core.test_cli import museforge
from tests.core.test_jobs_video import finished, video_spec

FPS = 25
FLASH = 25  # the frame shown white, one second after the first; the click is under it


def make_offset(path: Path, video_start: float, sound_start: float, frames: int = 50) -> Path:
    """An H.264 clip whose frames start at ``video_start`` s and sound at ``sound_start`` s of the file's
    clock, with a white frame at ``FLASH`` and a click at the same moment."""
    with av.open(str(path), "w") as out:
        video: Any = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound: Any = out.add_stream("aac", rate=48000)
        sound.layout = "mono"
        first = round(video_start * FPS)
        for number in range(frames):
            picture = np.full((48, 64, 3), 255 if number == FLASH else 60, np.uint8)
            picture[:, (number * 3) % 60:(number * 3) % 60 + 4] = 160
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = first + number
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        end = first / FPS + frames / FPS
        samples = np.zeros(round((end - sound_start) * 48000), np.float32)
        click = round((first / FPS + FLASH / FPS - sound_start) * 48000)
        samples[click:click + 96] = 0.9
        for begin in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, begin:begin + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, begin + round(sound_start * 48000)
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    return path


def click_at(samples: np.ndarray, rate: int = 48000) -> float:
    level = np.abs(samples.reshape(len(samples), -1)[:, 0])
    loud = np.flatnonzero(level > 0.5 * level.max())
    return float(loud[0] / rate)


def offset(path: Path) -> float:
    """Seconds from the white frame to the click, as a player shows them."""
    flashes = [n for n, f in enumerate(read_frames(probe(path))) if f.mean() > 235]
    assert len(flashes) == 1, flashes
    with av.open(str(path)) as container:
        video: Any = container.streams.video[0]
        stream: Any = container.streams.audio[0]
        shown = float(video.start_time * video.time_base) if video.start_time else 0.0
        begins = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        sound = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
    return begins + click_at(sound) - (shown + flashes[0] / FPS)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("video-sync")
    (root / "in").mkdir()
    (root / "out").mkdir()
    make_offset(root / "in" / "late.mp4", 0.48, 0.0)
    return root


@pytest.fixture()
def late(root: Path) -> Path:
    return root / "in" / "late.mp4"


def test_the_source_itself_is_in_sync(late: Path) -> None:
    assert abs(offset(late)) < 1 / FPS


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_the_command_line_keeps_picture_and_sound_together(late: Path, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"out{suffix}"
    result = museforge("apply", "effect.denoise", str(late), "-o", str(target), "--local",
                       "--plugins", "effect")
    assert result.returncode == 0, result.stderr
    assert abs(offset(target)) < 1 / FPS  # the click was 480 ms after the flash


def test_one_call_keeps_picture_and_sound_together(jobs: Client, late: Path, tmp_path: Path) -> None:
    reply = jobs.apply_effect("effect.denoise", [("late.mp4", late.read_bytes())], {}, fmt="mov")
    (tmp_path / "one.mov").write_bytes(reply.artifacts[0].data)
    assert abs(offset(tmp_path / "one.mov")) < 1 / FPS


@pytest.mark.parametrize("first", [0, 13])
def test_a_job_joined_from_parts_keeps_picture_and_sound_together(jobs: Client, root: Path,
                                                                   first: int) -> None:
    spec = video_spec(f"sync{first}/late.mp4", video="late.mp4", per_item=10, first_frame=first,
                      last_frame=49)
    meta, _ = finished(jobs, spec)
    assert meta.state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert abs(offset(root / "out" / f"sync{first}" / "late.mp4")) < 1 / FPS


def clip(path: Path) -> Clip:
    return Clip(probe(path), "mp4", path.name)


@pytest.mark.parametrize(("video_start", "sound_start"), [(0.48, 0.0), (0.0, 0.32)])
def test_a_clips_sound_is_read_from_its_first_frame(tmp_path: Path, video_start: float,
                                                     sound_start: float) -> None:
    made = clip(make_offset(tmp_path / "c.mp4", video_start, sound_start))
    whole = made.audio(48000, 1)
    assert whole is not None and abs(click_at(whole) - FLASH / FPS) < 1 / FPS
    part = made.audio(48000, 1, 0.6, 1.0)
    assert part is not None and len(part) == 48000 and abs(click_at(part) - (FLASH / FPS - 0.6)) < 1 / FPS


def test_an_edit_lays_each_shots_own_sound_under_it(late: Path, tmp_path: Path) -> None:
    source = clip(late)
    shots = [EditShot(source, 15, 20)]
    sound = source.audio(48000, 2, 15 / FPS, 20 / FPS)
    (tmp_path / "edit.mp4").write_bytes(rendered(shots, Fraction(FPS), sound))
    assert abs(offset(tmp_path / "edit.mp4")) < 1 / FPS

"""Rendering an edit (museforge.render_edit) and the sound decoding under it: shots of videos of
other sizes and rates fitted into the edit, a soundtrack laid under, parts joined at one rate."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from museforge import Clip, EditShot, render_edit
from museforge.engine.codecs.audio_decode import decode_samples
from museforge.engine.codecs.video import VideoWriter, probe, read_frames
from museforge.engine.codecs.video_inputs import decode_clip
from museforge.engine.codecs.video_join import join_parts
from museforge.engine.video_edit import fitted, rendered
from tests.core.test_video import make_video, moving


def clip_of(path: Path) -> Clip:
    return decode_clip(b"", path, path.name, ("mp4", "mov"), 10**9)


def test_shots_of_other_sizes_and_rates_are_fitted_and_keep_their_speed(tmp_path: Path) -> None:
    wide = clip_of(make_video(tmp_path / "wide.mp4", frames=50, fps=Fraction(25)))  # 64 x 48
    upright = [np.ascontiguousarray(moving(n).transpose(1, 0, 2)) for n in range(60)]
    tall = clip_of(make_video(tmp_path / "tall.mp4", frames=60, fps=Fraction(50), pictures=upright))
    sound = np.zeros((48000 * 2, 2), np.float32)
    shots = [EditShot(wide, 10, 20), EditShot(tall, 0, 30)]
    data = rendered(shots, Fraction(25), sound)
    out = tmp_path / "edit.mp4"
    out.write_bytes(data)
    made = probe(out)
    frames = list(read_frames(made))
    assert (made.width, made.height, made.fps, made.audio) == (64, 48, Fraction(25), "aac")
    assert len(frames) == 50
    # The 48 x 64 video, letterboxed: black bars left and right, picture in the middle.
    assert frames[30][:, :10].max() < 20 and frames[30][:, 27:37].mean() > 40
    # A 50 fps shot at 25 fps takes every second frame: its 30 frames cover 60 of the source.
    assert [s.source_frames(Fraction(25)) for s in shots] == [list(range(10, 30)), list(range(0, 60, 2))]
    steps = list(render_edit(shots, Fraction(25), None))
    assert steps == list(range(1, 51))


def test_fitting_keeps_the_shape() -> None:
    picture = np.full((40, 80, 3), 200, np.uint8)
    out = fitted(picture, 80, 80)
    assert out.shape == (80, 80, 3) and out[:19].max() == 0 and out[21:59].min() == 200


def test_sound_from_a_start_lines_up_with_the_whole(tmp_path: Path) -> None:
    import soundfile

    noise = np.random.default_rng(3).uniform(-0.5, 0.5, 44100 * 2).astype(np.float32)
    soundfile.write(tmp_path / "noise.wav", noise, 44100)  # resampled to 48 kHz on the way

    def source() -> Any:
        return av.open(str(tmp_path / "noise.wav"))

    whole = decode_samples(source, 48000, 1)
    part = decode_samples(source, 48000, 1, start=0.75, seconds=0.5)
    assert part.shape == (24000, 1) and abs(len(whole) - 96000) <= 64
    window = whole[36000 - 500:36000 + 24000 + 500, 0]
    lag = int(np.argmax(np.correlate(window, part[:, 0], "valid"))) - 500
    assert abs(lag) <= 2  # within a couple of samples of where it lies in the whole


def test_parts_too_short_for_b_frames_join_at_one_even_rate(tmp_path: Path) -> None:
    """A last part of two frames has no B-frames and no decode delay: its stamps are evened so the
    joined video keeps its rate (it read 22.5 fps for 24 before)."""
    source = probe(make_video(tmp_path / "src.mp4", frames=30, audio=False))
    frames = list(read_frames(source))
    silent = dataclasses.replace(source, audio=None, timecode=None)
    parts = []
    for start in range(0, 30, 7):
        with VideoWriter(tmp_path / f"part{start}.mp4", silent) as writer:
            for frame in frames[start:start + 7]:
                writer.write(frame)
        parts.append(tmp_path / f"part{start}.mp4")
    join_parts(parts, tmp_path / "joined.mp4", source, 0, 30)
    joined = probe(tmp_path / "joined.mp4")
    assert joined.fps == Fraction(24) and len(list(read_frames(joined))) == 30

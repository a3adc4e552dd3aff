"""An edit of a phone's portrait video (stored on its side, its display matrix turning it 90°) and a
landscape one: each shot is turned upright and letterboxed, and the edit is written unrotated."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from museforge.engine.codecs.video import VideoInfo, probe, read_frames
from museforge.engine.video_edit import EditShot, rendered
from tests.core.test_video import make_video
from tests.core.test_video_edit import clip_of

RED, BLUE = (220, 30, 30), (30, 30, 220)


def portrait() -> np.ndarray:
    """64 high, 48 wide as a player shows it: red above, blue below."""
    picture = np.zeros((64, 48, 3), np.uint8)
    picture[:32], picture[32:] = RED, BLUE
    return picture


def landscape() -> np.ndarray:
    """48 high, 64 wide: red left, blue right."""
    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:, :32], picture[:, 32:] = RED, BLUE
    return picture


def near(pixels: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool(np.abs(pixels.reshape(-1, 3).mean(0) - colour).max() < 25)


def phone_video(path: Path) -> Path:
    # Stored turned a quarter clockwise; the display matrix's 90° (counterclockwise) turns it back.
    stored = np.ascontiguousarray(np.rot90(portrait(), -1))
    made = make_video(path, frames=10, fps=Fraction(25), audio=False, pictures=[stored] * 10, rotation=90)
    assert probe(made).rotation == 90
    return made


def edit_of(tmp_path: Path, phone: str, phone_first: bool) -> tuple[VideoInfo, list[np.ndarray]]:
    """A landscape shot and a phone's rotated one, five frames each, rendered; the video and frames."""
    wide = clip_of(make_video(tmp_path / "wide.mp4", frames=10, fps=Fraction(25), audio=False,
                              pictures=[landscape()] * 10))
    rotated = clip_of(phone_video(tmp_path / phone))
    shots = [EditShot(wide, 0, 5), EditShot(rotated, 0, 5)]
    out = tmp_path / "edit.mp4"
    out.write_bytes(rendered(shots[::-1] if phone_first else shots, Fraction(25)))
    made = probe(out)
    return made, list(read_frames(made))


def test_a_rotated_shot_is_turned_upright_and_letterboxed(tmp_path: Path) -> None:
    made, frames = edit_of(tmp_path, "phone.mp4", phone_first=False)
    assert (made.width, made.height, made.rotation) == (64, 48, 0)
    assert near(frames[2][8:40, 4:28], RED) and near(frames[2][8:40, 36:60], BLUE)
    shot = frames[7]  # the phone's 48 x 64 picture fitted into 64 x 48: 36 x 48 between black bars
    assert shot[:, :10].max() < 30 and shot[:, -10:].max() < 30
    assert near(shot[4:20, 24:40], RED) and near(shot[28:44, 24:40], BLUE)


def test_an_edit_that_starts_with_a_rotated_video_is_upright_at_its_shape(tmp_path: Path) -> None:
    made, frames = edit_of(tmp_path, "phone.mov", phone_first=True)
    assert (made.width, made.height, made.rotation) == (48, 64, 0)
    assert near(frames[2][4:28, 8:40], RED) and near(frames[2][36:60, 8:40], BLUE)
    shot = frames[7]  # the landscape picture fitted into 48 x 64: 48 x 36 between black bars
    assert shot[:10].max() < 30 and shot[-10:].max() < 30
    assert near(shot[24:40, 4:20], RED) and near(shot[24:40, 28:44], BLUE)

"""Render an edit: pieces of input videos one after another, with a soundtrack, as one MP4 or MOV.

An effect that assembles a cut (``video.autocut``) names its shots as (clip, first frame,
frames) and hands them here; each shot is decoded from the key frame before it, its frames
sampled at the edit's rate (a 25 fps source in a 24 fps edit keeps its speed), turned upright
by its display matrix (a phone's portrait video), fitted into the edit's size (letterboxed
when the shape differs) and encoded, with the sound laid under
as it goes. Memory holds a few frames and the soundtrack's samples.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .codecs.video import OUTPUT_SUFFIXES, VideoError, VideoWriter, read_range
from .effect import Clip


@dataclass(frozen=True)
class EditShot:
    """One shot of an edit: ``frames`` frames of the edit, from ``clip`` starting at its frame ``start``."""

    clip: Clip
    start: int
    frames: int

    def source_frames(self, fps: Fraction) -> list[int]:
        """The clip's frame shown at each of the shot's frames, at the edit's rate ``fps``."""
        step = self.clip.fps / fps
        return [self.start + int(j * step) for j in range(self.frames)]


def render_edit(
    shots: Sequence[EditShot],
    fps: Fraction,
    sound: np.ndarray | None = None,
    size: tuple[int, int] | None = None,
    suffix: str = ".mp4",
) -> Generator[int, None, bytes]:
    """Render the edit, yielding the frames done so far after each; returns the file's bytes
    (``.mp4``: H.264 and AAC; ``.mov``: ProRes and PCM), ``size`` (width, height; default the
    first clip's) at ``fps``, over ``sound`` (float32 samples, frames x channels, at 48 kHz) when
    given. ``data = yield from render_edit(...)`` in a generator; :func:`rendered` otherwise."""
    if not shots:
        raise VideoError("an edit needs at least one shot")
    if suffix not in OUTPUT_SUFFIXES:
        raise VideoError(f"edits are written as {' or '.join(OUTPUT_SUFFIXES)}")
    width, height = size or upright_size(shots[0].clip)
    width, height = width - width % 2, height - height % 2
    done = 0
    # Every shot is turned upright here, so the edit itself is written unrotated.
    first = dataclasses.replace(shots[0].clip.info, audio=None, timecode=None, rotation=0)
    with tempfile.TemporaryDirectory(prefix="museforge-edit-") as folder:
        target = Path(folder) / f"edit{suffix}"
        with VideoWriter(target, first, rate=fps, sound=sound) as writer:
            for shot in shots:
                wanted = shot.source_frames(fps)
                frames = read_range(shot.clip.info, wanted[0], wanted[-1])
                number, picture = wanted[0], next(frames)
                for index in wanted:
                    while number < index:
                        number, picture = number + 1, next(frames)
                    writer.write(fitted(upright(picture, shot.clip.info.rotation), width, height))
                    done += 1
                    yield done
                frames.close()
        return target.read_bytes()


def rendered(shots: Sequence[EditShot], fps: Fraction, sound: np.ndarray | None = None,
             size: tuple[int, int] | None = None, suffix: str = ".mp4") -> bytes:
    """The edit's file, rendered without progress (see :func:`render_edit`)."""
    steps = render_edit(shots, fps, sound, size, suffix)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def upright(picture: np.ndarray, rotation: int) -> np.ndarray:
    """A frame as a player shows it: turned counterclockwise by its display matrix's ``rotation``
    (degrees, to the nearest quarter turn), as FFmpeg's autorotation does."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(picture, turns)) if turns else picture


def upright_size(clip: Clip) -> tuple[int, int]:
    """The clip's (width, height) as shown: sides swapped for a quarter turn."""
    quarter = round(clip.info.rotation / 90) % 2 == 1
    return (clip.height, clip.width) if quarter else (clip.width, clip.height)


def fitted(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    """``picture`` scaled to fit (width, height), centred on black when its shape differs."""
    if picture.shape[:2] == (height, width):
        return picture
    from PIL import Image

    scale = min(width / picture.shape[1], height / picture.shape[0])
    inner = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    scaled = np.asarray(Image.fromarray(picture).resize(inner, Image.Resampling.LANCZOS))
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - inner[1]) // 2, (width - inner[0]) // 2
    out[top:top + inner[1], left:left + inner[0]] = scaled
    return out

"""SMPTE timecode as editors read it: HH:MM:SS:FF, non-drop-frame, at the nearest whole rate."""

from __future__ import annotations

import re
from fractions import Fraction

_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})[:;.](\d{2})$")


def timebase(fps: Fraction) -> int:
    """The frames counted per timecode second (29.97 counts 30, 23.976 counts 24)."""
    return max(1, round(float(fps)))


def frames_of(timecode: str | None, fps: Fraction) -> int:
    """The frame number a timecode names ("01:00:00:00" -> 90000 at 25 fps); 0 for None."""
    if not timecode:
        return 0
    match = _TIMECODE.match(timecode.strip())
    if match is None:
        return 0  # an unreadable source timecode: count from zero rather than refuse the video
    hours, minutes, seconds, frames = (int(g) for g in match.groups())
    return ((hours * 60 + minutes) * 60 + seconds) * timebase(fps) + frames


def timecode_of(frame: int, fps: Fraction) -> str:
    base = timebase(fps)
    seconds, frames = divmod(frame, base)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours % 24:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"


def advanced(start: str | None, frames: int, fps: Fraction) -> str | None:
    """The timecode ``frames`` after ``start`` (None stays None): where a part cut from a video begins."""
    if not start or not frames:
        return start
    return timecode_of(frames_of(start, fps) + frames, fps)

"""SMPTE timecode as editors read it: HH:MM:SS:FF at the nearest whole rate, and drop-frame
(HH:MM:SS;FF) at 29.97 and 59.94, where the first two (four) frame numbers of every minute but
each tenth are skipped so the count keeps up with the clock."""

from __future__ import annotations

import re
from fractions import Fraction

_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2})$")


def timebase(fps: Fraction) -> int:
    """The frames counted per timecode second (29.97 counts 30, 23.976 counts 24)."""
    return max(1, round(float(fps)))


def _dropped(fps: Fraction) -> int:
    """Frame numbers skipped a minute in drop-frame at this rate (0 where it has none)."""
    base = timebase(fps)
    return base // 15 if base in (30, 60) and fps.denominator != 1 else 0


def is_drop_frame(timecode: str | None, fps: Fraction) -> bool:
    match = _TIMECODE.match(timecode.strip()) if timecode else None
    return bool(match and match.group(4) in ";," and _dropped(fps))


def frames_of(timecode: str | None, fps: Fraction, drop_frame: bool = False) -> int:
    """The frame number a timecode names ("01:00:00:00" -> 90000 at 25 fps); 0 for None. Read as
    non-drop-frame (as the shot and cut lists write it) unless ``drop_frame`` and it is one."""
    if not timecode:
        return 0
    match = _TIMECODE.match(timecode.strip())
    if match is None:
        return 0  # an unreadable source timecode: count from zero rather than refuse the video
    hours, minutes, seconds, _, frames = match.groups()
    total_minutes = int(hours) * 60 + int(minutes)
    counted = (total_minutes * 60 + int(seconds)) * timebase(fps) + int(frames)
    if drop_frame and is_drop_frame(timecode, fps):
        counted -= _dropped(fps) * (total_minutes - total_minutes // 10)
    return counted


def timecode_of(frame: int, fps: Fraction, drop_frame: bool = False) -> str:
    base, drop = timebase(fps), _dropped(fps) if drop_frame else 0
    if drop:  # back to the frame numbers a clock-true count would show, skipped ones included
        per_ten, per_minute = base * 600 - drop * 9, base * 60 - drop
        tens, rest = divmod(frame, per_ten)
        frame += drop * 9 * tens + (drop * ((rest - drop) // per_minute) if rest > drop else 0)
    seconds, frames = divmod(frame, base)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours % 24:02d}:{minutes:02d}:{seconds:02d}{';' if drop else ':'}{frames:02d}"


def advanced(start: str | None, frames: int, fps: Fraction) -> str | None:
    """The timecode ``frames`` after ``start`` (None stays None): where a part cut from a video begins."""
    if not start or not frames:
        return start
    drop = is_drop_frame(start, fps)  # a drop-frame start (";") stays drop-frame
    return timecode_of(frames_of(start, fps, drop) + frames, fps, drop)


def length_text(seconds: float) -> str:
    """A length as people read it: "2 h 00 min 04 s", "12 min 30.5 s", "0.25 s" (never "2.0 hours"
    for a length just past two hours)."""
    whole = int(seconds)
    hours, minutes, rest = whole // 3600, whole // 60 % 60, seconds - whole + whole % 60
    shown = f"{rest:g}" if rest != int(rest) else f"{int(rest):02d}" if (hours or minutes) else f"{int(rest)}"
    if hours:
        return f"{hours} h {minutes:02d} min {shown} s"
    return f"{minutes} min {shown} s" if minutes else f"{shown} s"

"""A video's shots as files an editor opens: JSON, a CMX 3600 EDL and OpenTimelineIO.

The list is what ``video.shots`` yields as its media (``kind="video"``). Shots run from
one boundary to the next; a gradual transition is cut at its middle frame in the EDL and
the OpenTimelineIO timeline, and every format also names its frames and confidence.
Timecodes start at the source's own timecode when it has one.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from museforge import provenance_json, timecode

from .shot_boundaries import Boundary


@dataclass(frozen=True)
class ShotList:
    name: str  # the source video's name
    fps: Fraction
    frames: int  # frames decoded
    start_timecode: str | None
    boundaries: tuple[Boundary, ...]

    @property
    def cuts(self) -> list[int]:
        """The first frame of every shot after the first (a gradual transition's middle)."""
        return [b.frame for b in self.boundaries]

    @property
    def shots(self) -> list[tuple[int, int]]:
        """[start, end) frames of every shot."""
        edges = [0, *self.cuts, self.frames]
        return [(a, b) for a, b in itertools.pairwise(edges) if b > a]

    @property
    def drop_frame(self) -> bool:
        return timecode.is_drop_frame(self.start_timecode, self.fps)

    def timecode(self, frame: int) -> str:
        return counted(self.start_timecode, self.fps, frame)


def counted(start: str | None, fps: Fraction, frame: int) -> str:
    """The timecode ``frame`` frames after ``start`` (a source's own timecode, or 0), counted as
    ``start`` is: a drop-frame start ("01:00:00;00" at 29.97) is read and written drop-frame, so
    an editor reading it back lands on the same frame."""
    drop = timecode.is_drop_frame(start, fps)
    return timecode.timecode_of(timecode.frames_of(start, fps, drop) + frame, fps, drop)


def frame_count_mode(drop_frame: bool) -> str:
    """The CMX 3600 FCM line for timecodes that are (or are not) drop-frame."""
    return f"FCM: {'DROP FRAME' if drop_frame else 'NON-DROP FRAME'}"


def encode_json(shots: ShotList, provenance: Mapping[str, str]) -> bytes:
    document = {
        "video": shots.name, "fps": str(shots.fps), "frames": shots.frames,
        "start_timecode": shots.timecode(0),
        "boundaries": [{"kind": b.kind, "start": b.start, "end": b.end, "frame": b.frame,
                        "timecode": shots.timecode(b.frame), "seconds": round(float(b.frame / shots.fps), 4),
                        "confidence": round(b.confidence, 4)} for b in shots.boundaries],
        "shots": [{"start": a, "end": b, "start_timecode": shots.timecode(a),
                   "end_timecode": shots.timecode(b)} for a, b in shots.shots],
        "museforge": json.loads(provenance_json(provenance)),
    }
    return (json.dumps(document, indent=1) + "\n").encode()


def reel_name(name: str) -> str:
    """An EDL reel name: up to 8 letters or digits (the CMX 3600 field)."""
    kept = "".join(c for c in name.rsplit(".", 1)[0].upper() if c.isalnum())
    return (kept or "AX")[:8]


def encode_edl(shots: ShotList, provenance: Mapping[str, str]) -> bytes:
    """CMX 3600: an event per shot, source and record timecodes equal (the shots in place), drop-frame
    when the source's own timecode is."""
    title = "".join(c for c in shots.name if c.isprintable())[:70] or "museforge shots"
    lines = [f"TITLE: {title}", frame_count_mode(shots.drop_frame), ""]
    gradual = {b.frame: b for b in shots.boundaries if b.kind == "gradual"}
    for number, (start, end) in enumerate(shots.shots, 1):
        source_in, source_out = shots.timecode(start), shots.timecode(end)
        lines.append(f"{number:03d}  {reel_name(shots.name):<8} V     C        "
                     f"{source_in} {source_out} {source_in} {source_out}")
        lines.append(f"* FROM CLIP NAME: {shots.name}")
        if start in gradual:
            b = gradual[start]
            lines.append(f"* GRADUAL TRANSITION: FRAMES {b.start}-{b.end}, CONFIDENCE {b.confidence:.2f}")
        lines.append("")
    lines.append(f"* museforge: {provenance_json(provenance)}")
    return ("\r\n".join(lines) + "\r\n").encode()


def rational_time(value: int, rate: float) -> dict[str, object]:
    return {"OTIO_SCHEMA": "RationalTime.1", "rate": rate, "value": float(value)}


def time_range(start: int, duration: int, rate: float) -> dict[str, object]:
    return {"OTIO_SCHEMA": "TimeRange.1", "duration": rational_time(duration, rate),
            "start_time": rational_time(start, rate)}


def encode_otio(shots: ShotList, provenance: Mapping[str, str]) -> bytes:
    """An OpenTimelineIO timeline (JSON): one video track, a clip per shot, all of one file."""
    rate = float(shots.fps)
    # OTIO counts a source's frames at its own rate: "01:00:00:00" at 23.976 is frame 86,400, as
    # OTIO's own from_timecode reads it (a count of frames, not a clock time to rescale).
    origin = timecode.frames_of(shots.start_timecode, shots.fps, drop_frame=True)
    available = {"OTIO_SCHEMA": "TimeRange.1", "duration": rational_time(shots.frames, rate),
                 "start_time": rational_time(origin, rate)}
    reference = {"OTIO_SCHEMA": "ExternalReference.1", "metadata": {}, "name": shots.name,
                 "available_range": available, "available_image_bounds": None, "target_url": shots.name}
    confidence = {b.frame: b for b in shots.boundaries}
    clips = []
    for number, (start, end) in enumerate(shots.shots, 1):
        found = confidence.get(start)
        clips.append({
            "OTIO_SCHEMA": "Clip.2", "name": f"shot {number:03d}", "effects": [], "markers": [],
            "enabled": True, "color": None, "active_media_reference_key": "DEFAULT_MEDIA",
            "media_references": {"DEFAULT_MEDIA": reference},
            "metadata": {"museforge": {"boundary": found.kind if found else None,
                                       "confidence": round(found.confidence, 4) if found else None}},
            "source_range": time_range(origin + start, end - start, rate),
        })
    track = {"OTIO_SCHEMA": "Track.1", "name": "V1", "kind": "Video", "children": clips, "effects": [],
             "markers": [], "enabled": True, "color": None, "metadata": {}, "source_range": None}
    stack = {"OTIO_SCHEMA": "Stack.1", "name": "tracks", "children": [track], "effects": [], "markers": [],
             "enabled": True, "color": None, "metadata": {}, "source_range": None}
    timeline = {"OTIO_SCHEMA": "Timeline.1", "name": shots.name, "global_start_time": None, "tracks": stack,
                "metadata": {"museforge": json.loads(provenance_json(provenance))}}
    return (json.dumps(timeline, indent=1) + "\n").encode()

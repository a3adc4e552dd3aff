"""What a generator or effect yields, checked before it is encoded.

A plugin's mistake (an index twice, an artifact short, int64 pixels, NaN, a Progress counting
in text) would otherwise come out as a file that is silently wrong, a file overwritten by its
twin, or an encoder's bare exception. Each is a plain error naming the media or the field, which
the pipeline turns into INTERNAL for this request alone. Every request, a generator's or an
effect's, is also held here to ``max_output_bytes`` (raw media, counted as each media comes: a
generator's ``estimate`` refuses most before they run) and to ``max_artifacts`` (media of any
size, so a run that never stops yielding is stopped), before gigabytes reach an encoder.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import FieldViolation, InvalidArgument
from .generator import Chunk, Media, Progress
from .request import PreparedRequest

FLOAT32 = 4  # bytes a sample counts for, as a generator's estimate counts them


# sRGB floats are 0 to 1; past these a slip is certain (0-255 or -1 to 1 data), which encoders would
# clip to a white or black picture. Within them, a resampler's overshoot is clipped as meant.
SRGB_FLOOR, SRGB_CEILING = -0.5, 1.5


def image_problem(data: Any, colorspace: str = "srgb") -> str:
    """'' for image data an encoder reads as meant, else what is wrong with it."""
    array = np.asarray(data)
    if array.ndim not in (2, 3) or (array.ndim == 3 and not 1 <= array.shape[2] <= 4):
        return f"an image is HxW or HxWxC with C of 1 to 4, got shape {array.shape}"
    if not array.shape[0] or not array.shape[1]:  # else an encoder's own message, or an empty file
        return f"an image has 1x1 pixels at least, got shape {array.shape}"
    if array.dtype not in (np.uint8, np.uint16, np.bool_) and array.dtype.kind != "f":
        return f"image data is uint8, uint16, bool or float in [0, 1], got {array.dtype}"
    if array.dtype.kind == "f" and array.size:
        low, high = array.min(), array.max()  # NaN if any is; else the infinities, if any
        if np.isnan(low):
            return "image data has NaN values"
        if np.isinf(low) or np.isinf(high):  # an encoder would clip them to black and white
            return "image data has infinite values"
        if colorspace != "linear" and not SRGB_FLOOR <= low <= high <= SRGB_CEILING:
            kind = "0-255" if high > SRGB_CEILING else "-1 to 1"
            return (f"sRGB float image data spans {low:g} to {high:g}: looks like {kind} data; scale to 0-1 "
                    "(or mark scene-linear light colorspace=\"linear\")")
    return ""


# A Progress's and a Chunk's fields as the reply's messages hold them: (name, type, limit).
EVENT_FIELDS: dict[type, tuple[tuple[str, type, int], ...]] = {
    Progress: (("completed", int, 2**32), ("total", int, 2**32), ("stage", str, 0), ("message", str, 0)),
    Chunk: (("index", int, 2**32), ("data", bytes, 0), ("media_type", str, 0), ("offset", int, 2**64)),
}


def check_event(event: Progress | Chunk) -> None:
    """TypeError or ValueError naming the field of ``event`` no reply could carry (a stream failed
    on it where the server builds its message; a unary call dropped it unseen)."""
    name = type(event).__name__
    for field, kind, limit in EVENT_FIELDS[type(event)]:
        value = getattr(event, field)
        if kind is int:
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"yielded a {name} whose {field} is {type(value).__name__}, not int")
            if not 0 <= value < limit:
                raise ValueError(f"yielded a {name} whose {field} is {value}, not 0 to {limit - 1}")
        elif not isinstance(value, kind):
            raise TypeError(f"yielded a {name} whose {field} is {type(value).__name__}, not {kind.__name__}")


class MediaTally:
    """The media of one request so far: indexes, parts and size."""

    def __init__(self, request: PreparedRequest, max_output_bytes: int, max_artifacts: int = 0) -> None:
        self.request = request
        self.generator = request.kind == "generator"
        self.limit = max_output_bytes  # 0: none (a bare state, as a steerer's renders use)
        self.max_artifacts = max_artifacts
        self.seen: set[tuple[int, str]] = set()
        self.bytes = 0

    def add(self, media: Media) -> None:
        encoder = self.request.encoder
        name = f"media {media.index}{' (' + media.part + ')' if media.part else ''}"
        if media.kind != encoder.modality:
            raise TypeError(f"{name} is {media.kind}, but {encoder.name} encodes {encoder.modality}")
        if media.index < 0:  # past count is allowed: a walk makes a frame per index for count 1
            raise ValueError(f"{name}: an index is 0 or more")
        if (media.index, media.part) in self.seen:
            raise ValueError(f"{name} was yielded twice")
        self.seen.add((media.index, media.part))
        if self.max_artifacts and len(self.seen) > self.max_artifacts:
            raise self.too_much(f"more than the {self.max_artifacts:,} artifacts (parts included)",
                                "max_artifacts")
        if media.kind == "image":
            problem = image_problem(media.data, media.colorspace)
            if problem:
                raise ValueError(f"{name}: {problem}")
        size = getattr(media.data, "size", 0)
        self.bytes += size * FLOAT32 if isinstance(size, int) else 0
        if self.limit and self.bytes > self.limit:
            raise self.too_much(f"{self.bytes:,} bytes of media (as float32) by {name}, more than the "
                                f"{self.limit:,}", "max_output_bytes")

    def too_much(self, made: str, setting: str) -> InvalidArgument:
        """The request refused as soon as its output passes a server limit (the run is stopped)."""
        asked = "fewer or smaller" if self.generator else "smaller parameters or inputs"
        return InvalidArgument("output too large", [FieldViolation(
            "parameters", f"{self.request.kind} {self.request.declared.name} made {made} this server "
            f"allows for one request ({setting}): ask for {asked}")])

    def complete(self) -> None:
        """The run ended on its own: a generator made an artifact per ``count`` at least (a walk
        makes one per frame), an effect one at least (none would be a success with no file)."""
        if not self.generator and not self.seen:
            raise ValueError("yielded no artifacts: an effect yields at least one Media")
        whole = {index for index, part in self.seen if not part}
        missing = sorted(set(range(self.request.count)) - whole)
        if self.generator and missing:
            shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise ValueError(f"yielded {len(whole)} artifacts for a count of {self.request.count}, "
                             f"none for index {shown}")

"""OpenEXR inputs: headers checked before OpenEXR parses them, then one part read, unpremultiplied.

Work and memory are bounded before any pixel is read. The headers are walked in Python first
(OpenEXR's own parsing costs ~45 µs a channel): at most ``MAX_EXR_ATTRIBUTES`` attributes and
``MAX_EXR_CHANNELS`` channels over all parts, deep parts refused. OpenEXR reads the pixels of
every part, so every part and every channel counts: each part's data window must be within
``max_pixels``, and the samples of all parts together (width x height x channels, summed)
within ``EXR_SAMPLES_PER_PIXEL`` x ``max_pixels``, what one RGBA picture at the limit holds.
Both checks run again on OpenEXR's parsed headers before any pixel is read.

The picture is the first part with colour (``R``, ``G``, ``B`` or ``Y``, and ``A``); other parts
and layered channels (``diffuse.R``) are not carried. EXR colour is premultiplied by alpha; a
:class:`Picture`'s is straight, as PNG's is, so it is divided by alpha where alpha > 0 (where
alpha is 0 the colour is emission, kept as it is). The part's header goes with the picture
(see :mod:`museforge.engine.codecs.exr_files`), for an EXR result to keep.
"""

from __future__ import annotations

import os
import struct
import threading

import numpy as np

from ..effect import Picture
from ..generator import SourceHeader
from .decode_errors import DecodeCancelled, DecodeError, check_cancel, check_size
from .exr_files import HALF_MAX, exr_on_disk, source_header

EXR_SAMPLES_PER_PIXEL = 4  # an RGBA picture's worth of samples per allowed pixel
MAX_EXR_ATTRIBUTES = 4096  # over all parts; real files have tens per part
MAX_EXR_CHANNELS = 1024  # over all parts; render passes with many AOVs have a few hundred
EXR_DEEP = (b"deepscanline", b"deeptile")
DAMAGED = "the OpenEXR file is truncated or its pixel data is damaged"


def _exr_attributes(data: bytes, pos: int, seen: list[int]) -> tuple[dict[bytes, bytes], int]:
    """One header's attributes we need (name -> value) and where the next header starts."""
    wanted: dict[bytes, bytes] = {}
    while True:
        name_end = data.find(b"\0", pos, pos + 256)
        if name_end == pos:
            return wanted, pos + 1
        type_end = data.find(b"\0", name_end + 1, name_end + 257)
        if name_end < 0 or type_end < 0 or type_end + 5 > len(data):
            raise DecodeError("exr header is truncated or corrupt")
        size = int.from_bytes(data[type_end + 1:type_end + 5], "little", signed=True)
        start = type_end + 5
        if size < 0 or start + size > len(data):
            raise DecodeError("exr header is truncated or corrupt")
        seen[0] += 1
        if seen[0] > MAX_EXR_ATTRIBUTES:
            raise DecodeError(f"exr header has more than {MAX_EXR_ATTRIBUTES} attributes")
        key = data[pos:name_end]
        if key in (b"channels", b"dataWindow", b"type"):
            if size > MAX_EXR_CHANNELS * 272 + 1:  # a channel entry is at most 256 + 16 bytes
                raise DecodeError(f"exr has more than {MAX_EXR_CHANNELS} channels")
            wanted[key] = data[start:start + size]
        pos = start + size


def _exr_channel_count(chlist: bytes) -> int:
    pos, count = 0, 0
    while pos < len(chlist) and chlist[pos] != 0:
        end = chlist.find(b"\0", pos)
        if end < 0:
            raise DecodeError("exr channel list is corrupt")
        pos, count = end + 17, count + 1  # name, then pixel type, pLinear, reserved, sampling
    return count


def _exr_parts(data: bytes) -> list[tuple[int, int, int, bool]]:
    """(width, height, channels, deep) of every part, from the raw headers (bounded work)."""
    flags = int.from_bytes(data[4:8], "little")
    pos, seen, parts = 8, [0], []
    while pos < len(data):
        attributes, pos = _exr_attributes(data, pos, seen)
        if not attributes:
            break
        if b"channels" not in attributes or len(attributes.get(b"dataWindow", b"")) != 16:
            raise DecodeError("exr header has no channel list or data window")
        x0, y0, x1, y1 = struct.unpack("<iiii", attributes[b"dataWindow"])
        deep = bool(flags & 0x800) or attributes.get(b"type", b"").rstrip(b"\0") in EXR_DEEP
        parts.append((x1 - x0 + 1, y1 - y0 + 1, _exr_channel_count(attributes[b"channels"]), deep))
        if not flags & 0x1000:  # single-part: one header
            break
    return parts


def _exr_budget(parts: list[tuple[int, int, int, bool]], max_pixels: int) -> None:
    if not parts:
        raise DecodeError("exr has no parts")
    if sum(p[2] for p in parts) > MAX_EXR_CHANNELS:
        raise DecodeError(f"exr has more than {MAX_EXR_CHANNELS} channels")
    for index, (width, height, _, deep) in enumerate(parts):
        if deep:
            raise DecodeError(f"exr part {index} holds deep data, which is not supported")
        check_size(width, height, max_pixels, f"exr part {index}")
    samples, limit = sum(w * h * c for w, h, c, _ in parts), EXR_SAMPLES_PER_PIXEL * max_pixels
    if samples > limit:
        raise DecodeError(f"exr holds {samples:,} samples (width x height x channels over "
                          f"{len(parts)} parts); the limit is {limit:,}")


def _channel_list(names: list[str]) -> str:
    shown = sorted(names)[:8]
    return repr(shown)[:-1] + (", ...]" if len(names) > 8 else "]")


def _library_reason(path: str) -> str:
    """OpenEXR's own reason for a read that failed: ``File`` only prints it and keeps no parts;
    the older ``InputFile`` interface raises it (absent from a future release: no reason then)."""
    import OpenEXR

    reader = getattr(OpenEXR, "InputFile", None)
    if reader is None:
        return ""
    try:
        exr = reader(path)
        try:
            exr.channel(next(iter(exr.header()["channels"])))  # one channel decodes every chunk
        finally:
            exr.close()
    except Exception as exc:  # whatever it raises is the reason; nothing here is fatal
        return f" (OpenEXR: {exc})"
    return ""


def _read_exr(path: str, max_pixels: int,
              cancel: threading.Event | None) -> tuple[dict[str, np.ndarray], SourceHeader]:
    """The channels of the first part with colour, and its header."""
    import OpenEXR  # the bindings read from a path only

    parsed, names = [], []
    for part in OpenEXR.File(path, header_only=True).parts:
        (x0, y0), (x1, y1) = part.header["dataWindow"]
        deep = part.type() in (OpenEXR.deepscanline, OpenEXR.deeptile)
        parsed.append((int(x1 - x0 + 1), int(y1 - y0 + 1), len(part.header["channels"]), deep))
        names.append(part.name())
    _exr_budget(parsed, max_pixels)  # again, on what OpenEXR itself will read
    check_cancel(cancel)
    parts = OpenEXR.File(path, separate_channels=True).parts
    if len(parts) < len(parsed):  # a part whose pixels OpenEXR could not read is left out
        raise DecodeError(DAMAGED + _library_reason(path))
    found = [(index, list(part.channels)) for index, part in enumerate(parts)]
    for index, channels in found:
        if {"R", "G", "B"} <= set(channels) or "Y" in channels:
            read = {n: np.asarray(c.pixels) for n, c in parts[index].channels.items()}
            wanted = [read[n] for n in ("R", "G", "B", "Y", "A") if n in read]
            height, width = wanted[0].shape[:2]
            half = all(plane.dtype == np.float16 for plane in wanted)
            header = source_header(parts[index].header, width, height, half)
            return {n: plane.astype(np.float32, copy=False) for n, plane in read.items()}, header
    if len(found) == 1:
        raise DecodeError(f"exr has channels {_channel_list(found[0][1])}; expected R, G, B or Y "
                          "(and A)")
    listed = "; ".join(f"part {i}{f' ({names[i]!r})' if names[i] else ''} has {_channel_list(c)}"
                       for i, c in found[:4])
    raise DecodeError(f"no part of the exr has colour channels (R, G, B or Y, and A): {listed}")


def unpremultiply(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight colour from premultiplied: divided by alpha where alpha > 0 (kept where it is 0:
    light with no coverage), held to float32's range so a speck of alpha makes no infinity."""
    a = alpha[:, :, None]
    straight = np.divide(colour, a, out=colour.copy(), where=a > 0)
    limit = np.finfo(np.float32).max
    return np.clip(straight, -limit, limit).astype(np.float32)


def decode_exr(data: bytes, max_pixels: int, name: str, cancel: threading.Event | None) -> Picture:
    _exr_budget(_exr_parts(data), max_pixels)
    check_cancel(cancel)
    with exr_on_disk(data) as path:
        try:
            planes, header = _read_exr(path, max_pixels, cancel)
        except DecodeCancelled:
            raise
        except Exception as exc:  # OpenEXR's messages name the file: keep server paths out
            message = str(exc).replace(path, "the input").replace(os.path.basename(path), "the input")
            if isinstance(exc, DecodeError):
                raise DecodeError(message) from exc
            raise DecodeError(f"cannot decode exr: {message}") from exc
    check_cancel(cancel)
    if all(k in planes for k in "RGB"):
        colour = np.stack([planes["R"], planes["G"], planes["B"]], axis=2)
    else:
        colour = planes["Y"][:, :, None]
    # Made finite as colour is (a NaN alpha failed every effect): NaN and -inf are no coverage.
    if not np.isfinite(colour).all():
        colour = np.nan_to_num(colour, nan=0.0, posinf=HALF_MAX, neginf=0.0)
    alpha = None
    if "A" in planes:
        alpha = np.clip(np.nan_to_num(planes["A"], nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
        colour = unpremultiply(colour, alpha)
    return Picture(np.ascontiguousarray(colour), alpha, format="exr", linear=True, name=name, source=header)

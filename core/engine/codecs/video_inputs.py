"""Video files as effect inputs: recognised by their first bytes, probed, handed over as a Clip.

A video reaches an effect undecoded (:class:`museforge.engine.effect.Clip`); only its header
and the first packets' timestamps are read here, so a request is refused (damaged, a
variable frame rate, no frames, too long, frames too large) before any work is queued.
"""

from __future__ import annotations

from pathlib import Path

from ..effect import Clip
from .decoders import DecodeError
from .video import VideoError, probe

MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"
QUICKTIME_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")


def sniff_video(head: bytes) -> str | None:
    """The container from a file's first bytes: "mp4", "mov", "mkv", "webm" or None."""
    if head.startswith(MATROSKA_MAGIC):
        return "webm" if b"webm" in head[:64] else "mkv"
    if head[4:8] in QUICKTIME_BOXES:
        return "mov" if head[4:8] != b"ftyp" or head[8:12] == b"qt  " else "mp4"
    return None


def input_head(data: bytes, path: Path | None) -> bytes:
    """An input's first bytes, which say what it is: read from its file for a caller in this process."""
    if path is None:
        return data[:64]
    with open(path, "rb") as file:
        return file.read(64)


def decode_clip(data: bytes, path: Path | None, name: str, accepted: tuple[str, ...],
                max_pixels: int) -> Clip:
    """A Clip of a video given as ``data`` or, for callers in this process only, read where it lies
    at ``path`` (``data`` then unused); DecodeError saying why it cannot be used."""
    fmt = sniff_video(input_head(data, path))
    if fmt is None:
        raise DecodeError("not a video container museforge reads (MP4, MOV, MKV or WebM)")
    if fmt not in accepted:
        raise DecodeError(f"{fmt} input is not accepted here; use one of {list(accepted)}")
    label = name or (path.name if path is not None else f"input.{fmt}")
    try:
        info = probe(path, data=None) if path is not None else probe(Path(label), data=data)
    except VideoError as exc:
        raise DecodeError(str(exc)) from None
    if info.width * info.height > max_pixels:
        raise DecodeError(f"{label}: frames of {info.width}x{info.height} exceed the limit of "
                          f"{max_pixels} pixels")
    return Clip(info, fmt, label)

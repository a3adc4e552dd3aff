"""What every input decoder raises, and the checks they share (size, cancellation)."""

from __future__ import annotations

import threading


class DecodeError(ValueError):
    """An input that cannot be decoded (bad bytes, unsupported format, too large)."""


class TooLarge(DecodeError):
    """An input with more pixels than the limit it is decoded under (said from its header)."""


class DecodeCancelled(DecodeError):
    """Decoding stopped because the caller's cancel event was set (e.g. its deadline passed)."""


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise DecodeCancelled("decoding the input was cancelled")


def check_size(width: int, height: int, max_pixels: int, what: str = "image") -> None:
    if width <= 0 or height <= 0:
        raise DecodeError(f"{what} has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise TooLarge(f"{what} is {width}x{height} = {width * height:,} pixels; the limit is "
                          f"{max_pixels:,}")

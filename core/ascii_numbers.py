"""Whole numbers read from text a caller sent: ports, versions, lengths."""

from __future__ import annotations

__all__ = ["ascii_number"]


def ascii_number(text: str, digits: int) -> int | None:
    """``text`` as a whole number when it is ASCII digits, at most ``digits`` of them, else None:
    ``str.isdigit`` also takes "²" and "٢", which ``int`` refuses, as it refuses past 4,300 digits."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= digits else None

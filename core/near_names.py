"""The "did you mean" of an unknown name: a misspelt generator, effect or model is one letter from
what was meant, and a list of every name makes the reader find it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "nearest"]


def nearest(name: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known name closest to ``name`` (difflib's ratio at least ``cutoff``), or None."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'image.digits'?)`` for the known name closest to ``name``, "" for none close."""
    close = nearest(name, known)
    return f" (did you mean {close!r}?)" if close else ""

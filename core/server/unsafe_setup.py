"""The error of a server that must not start as configured."""

from __future__ import annotations


class UnsafeSetup(ValueError):
    """The settings would expose the server unsafely, or cannot be used; the message says how to fix it."""

"""OpenEXR files on disk: the Python bindings read and write paths only, never bytes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def exr_on_disk(data: bytes) -> Iterator[str]:
    """``data`` as a private temporary .exr file, removed afterwards."""
    handle, path = tempfile.mkstemp(suffix=".exr")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        yield path
    finally:
        os.unlink(path)

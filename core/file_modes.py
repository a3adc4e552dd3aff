"""The modes files and folders get when made the safe way (``mkstemp``, ``mkdtemp`` make them
private, 0600 and 0700) and then renamed into place: the modes a plain ``open`` or ``mkdir``
would give, so a server running as another user can read them."""

from __future__ import annotations

import os


def _read_umask() -> int:
    """The process's umask, read once at import (setting it to read it is not safe among threads)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()
FILE_MODE = 0o666 & ~UMASK
FOLDER_MODE = 0o777 & ~UMASK

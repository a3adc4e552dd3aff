"""The data directory and its databases at start-up: a failure is a setup problem (``serve`` exits 2)
whose message names the file and what to do, not a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..config import Settings, data_directory
from ..feedback.store import NewerSchema, StoreError
from .unsafe_setup import UnsafeSetup

T = TypeVar("T")

# What to do about a database that cannot be used, by StoreError's reason.
FIXES = {
    "its disk is full": "free space on its disk",
    "it is read-only": "let the server's user write it (and its directory)",
    "its disk reports an I/O error": "check its disk",
    "its file cannot be opened": "let the server's user read and write it (and its directory)",
    "another process holds it locked": "stop the process holding it, or give this server another data_dir",
}

DAMAGED = ("its file is damaged", "its file is not a database")


def check_data_dir(settings: Settings) -> None:
    """A data_dir that is a file, said as such before any model loads (creating the databases under
    it would say only "File exists")."""
    directory = data_directory(settings)
    if directory.exists() and not directory.is_dir():
        raise UnsafeSetup(f"data_dir {directory} is not a directory: set data_dir (MUSEFORGE_DATA_DIR) to "
                          "a directory, which is made when missing")


def open_database(what: str, path: Path, open_: Callable[[Path], T], held: str) -> T:
    """``open_(path)``, its failure an UnsafeSetup naming ``what`` (e.g. "job database") at ``path``
    and the fix; a damaged file is moved aside by the operator, losing the ``held`` it kept."""
    try:
        return open_(path)
    except NewerSchema as exc:  # its message says to upgrade museforge
        raise UnsafeSetup(f"cannot open the {what} {path}: {exc}") from exc
    except StoreError as exc:
        fix = FIXES.get(exc.reason, "check the file, its directory's permissions and its disk")
        if exc.reason in DAMAGED:
            fix = (f"move it aside (the server then starts a new, empty one: {held} are lost) or restore "
                   "it from a backup")
        raise UnsafeSetup(f"cannot open the {what} {path}: {exc}; {fix}") from exc
    except OSError as exc:  # the data directory cannot be made or written: the setting, not the port
        raise UnsafeSetup(f"data_dir {path.parent} cannot hold the {what}: {exc.strerror or exc}") from exc

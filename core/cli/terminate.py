"""SIGTERM handled as Ctrl-C by every command but serve (which drains on it itself)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def terminated_as_interrupted() -> Iterator[None]:
    """SIGTERM (``timeout``, a farm's scheduler, ``kill``) raised as Ctrl-C is while inside: the
    writers' context managers then remove their hidden partial files, which a process ended by
    SIGTERM's default action would leave behind."""
    if threading.current_thread() is not threading.main_thread():  # signals go to the main thread only
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)

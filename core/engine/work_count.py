"""How many requests the engine is working on now.

Background work that shares the cores with them (rendering artifacts so recommendations know
what they look like) waits while any is under way, so a caller's generation comes first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WorkCount:
    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Counts the work inside the ``with`` block, until it ends or is abandoned."""
        with self._lock:
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1

    def busy(self) -> bool:
        return self._count > 0

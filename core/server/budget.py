"""The server-wide budget of request bytes held in memory, shared by gRPC calls and HTTP bodies.

Every request message (and every body the HTTP gateway reads) holds its bytes from the
moment it arrives until its call ends, and the work it starts holds copies of them
(parsed parameters, decoded pictures). Per-key limits count calls, not bytes: without
one budget over all of them, a few callers sending large messages at once exhaust the
memory of the server. A gRPC call that finds no room is refused at once
(RESOURCE_EXHAUSTED with a retry delay); the gateway waits a while for room first.
"""

from __future__ import annotations

import threading


class ByteBudget:
    """Bytes held across all calls; a request larger than the whole budget may still run alone."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.room = threading.Condition()

    def charge(self, size: int) -> int:
        """What a request of ``size`` bytes takes from the budget (never more than all of it)."""
        return min(max(0, size), self.total)

    def fits(self, size: int) -> bool:
        """Whether ``size`` bytes would fit now (a hint: another call may take the room first)."""
        return self.used + self.charge(size) <= self.total

    def try_acquire(self, size: int) -> bool:
        """Take ``size`` bytes if they fit now; False (taking nothing) if they do not."""
        size = self.charge(size)
        with self.room:
            if self.used + size > self.total:
                return False
            self.used += size
            return True

    def acquire(self, size: int, timeout: float) -> bool:
        """Take ``size`` bytes, waiting up to ``timeout`` seconds for room."""
        size = self.charge(size)
        with self.room:
            if not self.room.wait_for(lambda: self.used + size <= self.total, timeout):
                return False
            self.used += size
            return True

    def release(self, size: int) -> None:
        with self.room:
            self.used -= self.charge(size)
            self.room.notify_all()

"""The signals that stop ``museforge serve``, also while it is still starting, and how a child
process ended, said as an operator reads it."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

# What drains the server: Ctrl-C, a service manager's stop, and a closed terminal or session
# (SIGHUP, whose default would end the process with no drain at all).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))  # no SIGHUP on Windows


class StartupStopped(BaseException):
    """A stop signal (named by the message) came before the server served: nothing to drain, so
    the start is undone and the process exits 0, as after a drain. Not an Exception, so that no
    plugin loader's ``except Exception`` takes it for a broken plugin."""


class StopRequest(threading.Event):
    """Set by a stop signal; ``name`` says which (a parent of workers waits on it)."""

    name = ""

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.name = signal.Signals(signum).name
        self.set()


@contextlib.contextmanager
def stoppable_start() -> Iterator[None]:
    """Within it, the first stop signal raises StartupStopped where the start is (a model load
    running in C finishes first), and later ones are ignored while the start is undone. Without
    it the signals' defaults would end the process at once, 143 and no word in the log. Once the
    server serves, its drain's handlers replace these; on leaving, the ones before come back."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise StartupStopped(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def how_it_ended(pid: int | None, exitcode: int | None) -> str:
    """"(pid 123) was killed by SIGKILL" or "(pid 123) exited with code 1", from a reaped process's
    exit code (negative: the signal that ended it)."""
    if exitcode is None:
        return f"(pid {pid}) ended, its exit status unknown"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"(pid {pid}) was killed by {name}"
    return f"(pid {pid}) exited with code {exitcode}"

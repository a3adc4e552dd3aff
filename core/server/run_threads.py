"""The worker threads calls run on: a fixed number, plus one for each run that outlived its call.

Python cannot stop a thread, so a plugin that never looks at its cancel flag keeps its thread
after its call ended. With a fixed pool (``ThreadPoolExecutor``) each such run took a thread for
good, and a plugin with several such generators took them all: every later call waited for a
thread that never came. Here a run that outlives its call is replaced (``grow``): the pool may
start one more thread, and gives it up when that run ends (``shrink``), so the calls after it
find as many threads as before. ``most`` bounds the replacements.

The threads are daemon threads: a server that stops does not wait at exit for plugin code that
never returns (``ThreadPoolExecutor`` joins its threads at interpreter exit, so one hung plugin
kept a stopped server's process alive).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class _Work:
    def __init__(self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


class RunThreads(Executor):
    """Up to ``threads`` threads, plus one per run counted by ``grow`` (at most ``most`` more)."""

    def __init__(self, threads: int, most: int, name: str) -> None:
        self.base, self.most, self.name = threads, most, name
        self._extra = 0  # runs replaced: each may have a thread beyond ``base``
        self._pending: collections.deque[_Work] = collections.deque()
        self._ready = threading.Condition()
        self._threads = 0
        self._waiting = 0  # threads idle in ``_ready.wait``
        self._started = 0  # for thread names
        self._closed = False

    @property
    def limit(self) -> int:
        return self.base + self._extra

    def threads(self) -> int:
        with self._ready:
            return self._threads

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("cannot run new work: the server is stopping")
            self._pending.append(_Work(future, fn, args, kwargs))
            self._staff()
        return future

    def grow(self) -> bool:
        """A run outlived its call and keeps its thread: another may start in its stead. False when
        ``most`` runs are replaced already."""
        with self._ready:
            if self._extra >= self.most:
                return False
            self._extra += 1
            self._staff()
            return True

    def shrink(self) -> None:
        """A run ``grow`` counted ended; its thread leaves if the pool is above its limit."""
        with self._ready:
            self._extra -= 1
            self._ready.notify_all()  # an idle thread above the limit leaves now

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._ready:
            self._closed = True
            if cancel_futures:
                while self._pending:
                    self._pending.popleft().future.cancel()
            self._ready.notify_all()
        # ``wait`` is not honoured for threads still inside plugin code: nothing can end them.

    def _staff(self) -> None:
        """Wake an idle thread for the pending work, or start one while under the limit."""
        if self._waiting >= len(self._pending):
            self._ready.notify(len(self._pending))
        elif self._threads < self.limit:
            self._threads += 1
            self._started += 1
            threading.Thread(target=self._serve, name=f"{self.name}_{self._started}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            with self._ready:
                while True:
                    # One too many since a replaced run ended (this thread ran it, or another did):
                    # leave, whatever waits; the others are as many as the limit.
                    if self._threads > self.limit or (self._closed and not self._pending):
                        self._threads -= 1
                        return
                    if self._pending:
                        break
                    self._waiting += 1
                    self._ready.wait()
                    self._waiting -= 1
                work = self._pending.popleft()
            work.run()
            del work  # its result belongs to the caller now

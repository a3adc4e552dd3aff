"""The threads generator and effect calls run on, shared so that no one plugin can take them all.

Python cannot stop a thread. A generator that never looks at its cancel flag (a plugin's
``time.sleep(60)``, a loop with no ``ctx.check_cancelled()``) goes on running after its call
ended: cancelled by the client or past its time limit. With one plain pool those threads
were lost until the work ended, and ten such calls stopped every other generator on the
server. Here:

- at most ``threads`` calls run at once (``slot``), and at most ``share`` (three quarters) of one
  generator or effect; a call gives its place back when it ends,
  whether or not its thread has stopped, or when its work ends, if that is first (a stream
  whose client reads slowly needs no thread for what was already made);
- the executor has ``threads`` more threads for work that outlives its call ("overdue"), so
  the calls after it still find threads;
- a generator or effect with ``MAX_OVERDUE`` overdue runs is refused at once (UNAVAILABLE,
  naming it) until they end, so it cannot fill the spare threads either.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from ..engine.errors import Unavailable

T = TypeVar("T")
MAX_OVERDUE = 2  # overdue runs a generator or effect may have before its calls are refused


class Run:
    """One call's work in a thread; knows whether it outlived its call. Its place is given back
    at whichever comes first: the work's end (a stream still writing what was made needs no
    thread) or the call's."""

    def __init__(self, pool: CallPool, name: str, give_back: Callable[[], None]) -> None:
        self.pool, self.name = pool, name
        self.done = self.abandoned = False
        self.loop = asyncio.get_running_loop()
        self._give_back: Callable[[], None] | None = give_back

    def _release(self) -> None:  # on the event loop
        if self._give_back is not None:
            give_back, self._give_back = self._give_back, None
            give_back()

    def finished(self) -> None:
        """The work ended (in its worker thread)."""
        with self.pool.lock:
            self.done = True
            if self.abandoned:
                self.pool.overdue[self.name] -= 1
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone, and its places
            self.loop.call_soon_threadsafe(self._release)

    def ended(self) -> None:
        """The call ended; if its work still runs, it is overdue until it finishes."""
        with self.pool.lock:
            if not self.done and not self.abandoned:
                self.abandoned = True
                self.pool.overdue[self.name] += 1
        self._release()

    def wrap(self, work: Callable[[], T]) -> Callable[[], T]:
        def tracked() -> T:
            try:
                return work()
            finally:
                self.finished()
        return tracked


class CallPool:
    """``threads`` calls at a time, and as many spare threads for work that outlives its call."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.executor = ThreadPoolExecutor(threads * 2, thread_name_prefix="museforge-gen")
        self.lock = threading.Lock()
        self.overdue: Counter[str] = Counter()
        # One generator or effect may hold this many places: the rest stay for the others, so a
        # burst of heavy calls to one (1024-pixel textures) does not queue a 7 ms digit behind it.
        self.share = max(1, threads - max(1, threads // 4))
        self._places: asyncio.Semaphore | None = None
        self._shares: dict[str, asyncio.Semaphore] = {}

    def overdue_runs(self) -> int:
        """Runs still going after their call ended."""
        with self.lock:
            return sum(self.overdue.values())

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    @asynccontextmanager
    async def slot(self, name: str, seconds: float) -> AsyncIterator[Run]:
        """A place to run ``name``'s call: waits up to ``seconds`` for one (asyncio.TimeoutError
        after), or Unavailable at once when its earlier calls are still running past their end."""
        with self.lock:
            late = self.overdue[name]
        if late >= MAX_OVERDUE:
            raise Unavailable(f"{name}: {late} earlier calls are still running after they were cancelled or "
                              "ran out of time (it does not stop when asked); try again when they end")
        if self._places is None:  # made on the event loop that uses it
            self._places = asyncio.Semaphore(self.threads)
        places, share = self._places, self._shares.setdefault(name, asyncio.Semaphore(self.share))
        deadline = asyncio.get_running_loop().time() + seconds
        await _take(share, seconds)
        try:
            await _take(places, deadline - asyncio.get_running_loop().time())
        except BaseException:
            share.release()
            raise

        def give_back() -> None:
            places.release()
            share.release()

        run = Run(self, name, give_back)
        try:
            yield run
        finally:
            run.ended()


async def _take(semaphore: asyncio.Semaphore, seconds: float) -> None:
    """Acquire within ``seconds`` (asyncio.TimeoutError after)."""
    if semaphore.locked():
        await asyncio.wait_for(semaphore.acquire(), max(0.0, seconds))
    else:  # free: taken without a suspension, where wait_for could swallow the call's cancellation
        await semaphore.acquire()

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
- a generator or effect with ``MAX_OVERDUE`` overdue runs is refused (UNAVAILABLE, naming it)
  until they end, checked again once a call has its place, so a burst of calls makes at most
  its share of places and one more (no more than the spare threads); work a call gave up on
  before it began is not run.
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
        self.started = self.done = self.call_ended = self.abandoned = False
        self.loop = asyncio.get_running_loop()
        self._give_back: Callable[[], None] | None = give_back

    def _release(self) -> None:  # on the event loop
        if self._give_back is not None:
            give_back, self._give_back = self._give_back, None
            give_back()

    def begin(self) -> bool:
        """The work starts (in its worker thread); False when its call already ended: skip it."""
        with self.pool.lock:
            self.started = not self.call_ended
            return self.started

    def finished(self) -> None:
        """The work ended (in its worker thread)."""
        with self.pool.lock:
            self.done = True
            if self.abandoned:
                self.pool.overdue[self.name] -= 1
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone, and its places
            self.loop.call_soon_threadsafe(self._release)

    def ended(self) -> None:
        """The call ended; if its work is running still, it is overdue until it finishes (work that
        never started is not: it will not run)."""
        with self.pool.lock:
            self.call_ended = True
            if self.started and not self.done and not self.abandoned:
                self.abandoned = True
                self.pool.overdue[self.name] += 1
        self._release()

    def wrap(self, work: Callable[[], T]) -> Callable[[], T | None]:
        def tracked() -> T | None:
            if not self.begin():
                return None  # nobody waits for it any more
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
        # Per name: its share and the calls holding or waiting for it (dropped at none, so names
        # asked for once, known or not, do not pile up).
        self._shares: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    def overdue_runs(self) -> int:
        """Runs still going after their call ended."""
        with self.lock:
            return sum(self.overdue.values())

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _refuse_if_overdue(self, name: str) -> None:
        with self.lock:
            late = self.overdue[name]
        if late >= MAX_OVERDUE:
            # Said as what is known: a run stops at its next check, which may be after one long
            # model run (a 2048-px texture), or never (a plugin that does not check).
            raise Unavailable(f"{name}: {late} earlier calls were cancelled or ran out of time and their "
                              "work has not stopped yet (it stops at its next cancellation check); try "
                              "again in a few seconds")

    @asynccontextmanager
    async def slot(self, name: str, seconds: float) -> AsyncIterator[Run]:
        """A place to run ``name``'s call: waits up to ``seconds`` for one (asyncio.TimeoutError
        after), or Unavailable when its earlier calls are still running past their end."""
        self._refuse_if_overdue(name)
        if self._places is None:  # made on the event loop that uses it
            self._places = asyncio.Semaphore(self.threads)
        places = self._places
        share, users = self._shares.setdefault(name, (asyncio.Semaphore(self.share), [0]))
        users[0] += 1

        def leave() -> None:
            users[0] -= 1
            if users[0] == 0:
                self._shares.pop(name, None)

        deadline = asyncio.get_running_loop().time() + seconds
        try:
            await _take(share, seconds)
        except BaseException:
            leave()
            raise
        places_taken = False
        try:
            await _take(places, deadline - asyncio.get_running_loop().time())
            places_taken = True
            self._refuse_if_overdue(name)  # a burst that passed the first look while none were
        except BaseException:  # no place in time, refused, or cancelled: the share goes back too
            if places_taken:
                places.release()
            share.release()
            leave()
            raise

        def give_back() -> None:
            places.release()
            share.release()
            leave()

        run = Run(self, name, give_back)
        try:
            yield run
        finally:
            run.ended()


async def _take(semaphore: asyncio.Semaphore, seconds: float) -> None:
    """Acquire within ``seconds`` (asyncio.TimeoutError after), never holding it when cancelled."""
    if not semaphore.locked():  # free: taken without a suspension
        await semaphore.acquire()
        return
    # Not wait_for: before Python 3.12 it can return the acquired semaphore to a call that was
    # cancelled in the same pass, which then runs its whole work for nobody.
    waiter = asyncio.ensure_future(semaphore.acquire())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=max(0.0, seconds))
    except asyncio.CancelledError:
        if not waiter.cancel() and not waiter.cancelled() and waiter.exception() is None:
            semaphore.release()  # it was granted as the call went
        raise
    if waiter not in done:
        if not waiter.cancel():  # granted between the timeout and now
            semaphore.release()
        raise asyncio.TimeoutError

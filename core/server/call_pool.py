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
- a run that outlives its call ("overdue") keeps its thread, and the executor
  (:mod:`run_threads`) starts another in its stead, up to ``most`` (four times ``threads``), so
  overdue runs never take the threads of the calls that hold places;
- new calls are refused (UNAVAILABLE, naming the generator or effect and the plugin) while its
  generator or effect has ``MAX_OVERDUE`` overdue runs, its plugin ``PLUGIN_OVERDUE``, or, once
  the server holds ``crowded`` (twice ``threads``), while its plugin holds any; past ``most``
  every call is. Checked again once a call has its place: a burst of calls passes these limits
  by at most the places it held (past ``most``, fewer than the executor's ``threads`` spare
  threads). Work a call gave up on before it began is not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from ..engine.errors import Unavailable
from .run_threads import RunThreads

T = TypeVar("T")
log = logging.getLogger("museforge.server")
MAX_OVERDUE = 2  # overdue runs a generator or effect may have before its calls are refused
PLUGIN_OVERDUE = 4  # and a plugin, over all its generators and effects


class Run:
    """One call's work in a thread; knows whether it outlived its call. Its place is given back
    at whichever comes first: the work's end (a stream still writing what was made needs no
    thread) or the call's."""

    def __init__(self, pool: CallPool, name: str, plugin: str, give_back: Callable[[], None]) -> None:
        self.pool, self.name, self.plugin = pool, name, plugin
        self.started = self.done = self.call_ended = self.abandoned = self.replaced = False
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
            if self.started:
                self.pool.going[self.name] += 1
            return self.started

    def finished(self) -> None:
        """The work ended (in its worker thread)."""
        with self.pool.lock:
            self.done = True
            self.pool.going[self.name] -= 1
            if not self.pool.going[self.name]:
                del self.pool.going[self.name]
            was_held = self.abandoned and self.pool.held(self.plugin)
            if self.abandoned:
                self.pool.late[self.plugin, self.name] -= 1
                if not self.pool.late[self.plugin, self.name]:  # names a client made up do not pile up
                    del self.pool.late[self.plugin, self.name]
                if self.replaced:  # this thread leaves again, or another idle one
                    self.pool.executor.shrink()
            freed = was_held and not self.pool.held(self.plugin)
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone, and its places
            self.loop.call_soon_threadsafe(self._release)
            if freed:
                self.loop.call_soon_threadsafe(self.pool.said_held, self.plugin, False)

    def ended(self) -> None:
        """The call ended; if its work is running still, it is overdue until it finishes (work that
        never started is not: it will not run)."""
        held = False
        with self.pool.lock:
            self.call_ended = True
            if self.started and not self.done and not self.abandoned:
                self.abandoned = True
                was_held = self.pool.held(self.plugin)
                self.pool.late[self.plugin, self.name] += 1
                self.replaced = self.pool.executor.grow()
                held = not was_held and self.pool.held(self.plugin)
        self._release()
        if held:
            self.pool.said_held(self.plugin, True)

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
    """``threads`` calls at a time on twice as many threads, and one more for each run that outlives
    its call (up to ``most``)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.crowded = threads * 2  # overdue runs past which a plugin holding any is refused
        self.most = threads * 4  # and past which every call is
        # ``threads`` for the places, as many spare for OIP's model runs and overdue runs past ``most``.
        self.executor = RunThreads(threads * 2, self.most, "museforge-gen")
        self.lock = threading.Lock()
        self.late: Counter[tuple[str, str]] = Counter()  # overdue runs by (plugin, generator or effect)
        self.going: Counter[str] = Counter()  # runs in a thread now, overdue or not, by generator or effect
        # Told on the event loop when a plugin's calls start (True) or stop being refused for its
        # overdue runs (health reports it).
        self.on_held: Callable[[str, bool], Awaitable[None]] | None = None
        self._telling: set[asyncio.Future[None]] = set()  # held until done: the loop keeps weak ones
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
            return sum(self.late.values())

    def overdue_by_name(self) -> Counter[str]:
        """Runs still going after their call ended, by generator or effect ("generator image.digits")."""
        with self.lock:
            return Counter({name: n for (_, name), n in self.late.items()})

    def held(self, plugin: str) -> bool:
        """Under ``lock``: the plugin's calls are refused for its own overdue runs."""
        return bool(plugin) and sum(n for (p, _), n in self.late.items() if p == plugin) >= PLUGIN_OVERDUE

    def said_held(self, plugin: str, held: bool) -> None:  # on the event loop
        if self.on_held is not None:
            # What holds now, not what the caller saw: a release posted from a worker thread may
            # run after a later hold made on the loop, and would leave health saying SERVING.
            with self.lock:
                held = self.held(plugin)
            telling = asyncio.ensure_future(self.on_held(plugin, held))
            self._telling.add(telling)
            telling.add_done_callback(self._telling.discard)

    def shutdown(self) -> None:
        """No more work; runs still inside plugin code are left to their (daemon) threads, said in
        the log: nothing can stop them, and waiting for them kept a stopped server alive."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            going = Counter(self.going)
        if going:
            runs = going.total()
            log.warning("stopping with %d plugin run%s still going (%s): not at a cancellation check yet, "
                        "and the server does not wait for them", runs, "" if runs == 1 else "s",
                        _listed(going))

    def _refuse_if_overdue(self, name: str, plugin: str) -> None:
        with self.lock:
            late = self.late[plugin, name]
            total = sum(self.late.values())
            theirs = Counter({n: k for (p, n), k in self.late.items() if p == plugin and plugin})
        mine = sum(theirs.values())
        who = f"{name} (plugin {plugin})" if plugin else name
        # Said as what is known: a run stops at its next check, which may be after one long model
        # run (a 2048-px texture), or never (a plugin that does not check).
        if total >= self.most:
            raise Unavailable(f"{who}: the server has {total} runs still going after their calls were "
                              f"cancelled or ran out of time ({_listed(self.overdue_by_name())}); every "
                              "generator and effect is refused until some stop; try again later")
        if late >= MAX_OVERDUE:
            raise Unavailable(f"{who}: {late} earlier calls were cancelled or ran out of time and their "
                              "work has not stopped yet (it stops at its next cancellation check); try "
                              "again in a few seconds")
        if mine >= PLUGIN_OVERDUE or (mine and total >= self.crowded):
            among = f"; the server has {total} such runs" if mine < PLUGIN_OVERDUE else ""
            raise Unavailable(f"{name}: plugin {plugin} has {mine} runs still going after their calls were "
                              f"cancelled or ran out of time ({_listed(theirs)}){among}; its generators and "
                              "effects are refused until they stop (at their next cancellation check); "
                              "try again in a few seconds")

    @asynccontextmanager
    async def slot(self, name: str, seconds: float, plugin: str = "") -> AsyncIterator[Run]:
        """A place to run ``name``'s call (of ``plugin``, "" for none): waits up to ``seconds`` for
        one (asyncio.TimeoutError after), or Unavailable when earlier calls are still running past
        their end (see the module's text)."""
        self._refuse_if_overdue(name, plugin)
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
            self._refuse_if_overdue(name, plugin)  # a burst that passed the first look while none were
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

        run = Run(self, name, plugin, give_back)
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


def _listed(runs: Counter[str]) -> str:
    return ", ".join(f"{n} of {name}" for name, n in runs.most_common())

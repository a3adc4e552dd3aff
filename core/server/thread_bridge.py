"""Blocking work in worker threads, awaited on the event loop within a call's time limit: one
result (``call_in_thread``) or the events of a generator as they come (``iterate_in_thread``).
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar, cast

from ..engine.errors import DeadlineExceeded
from ..runtime.stop import StopSignal
from .call_pool import Run

T = TypeVar("T")
_DONE = object()


@dataclass
class Deadline:
    """One call's time limit, shared by preparing its request and running it."""

    seconds: float
    what: str
    at: float = 0.0
    plugin: str = ""  # the plugin that declared what runs ("" for none): its runs are counted together

    def __post_init__(self) -> None:
        self.at = asyncio.get_running_loop().time() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.at - asyncio.get_running_loop().time())

    def exceeded(self) -> DeadlineExceeded:
        # "Cancelled", not "stopped": the work is asked to stop, and a plugin may not listen.
        return DeadlineExceeded(f"{self.what} ran past its {self.seconds:g} s limit and was cancelled")

    def no_thread(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"{self.what}: every worker thread stayed busy for its {self.seconds:g} s "
                                "limit, so it never started")

    def slow_reader(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"{self.what}: the client read its results too slowly to finish within "
                                f"the {self.seconds:g} s limit; the rest was not made")


async def call_in_thread(work: Callable[[threading.Event], T], executor: Executor, deadline: Deadline,
                         run: Run | None = None) -> T:
    """``work(cancel)`` in a worker thread within the call's time; ``cancel`` is set once the
    call ends early (cancelled by the client, or out of time), so the work stops too.
    ``run`` is told when the work ends (see :mod:`call_pool`)."""
    cancel = StopSignal()  # also stops a model run under way
    job = partial(work, cancel)
    future = asyncio.get_running_loop().run_in_executor(executor, run.wrap(job) if run else job)
    try:
        return cast(T, await asyncio.wait_for(future, deadline.remaining()))
    except asyncio.TimeoutError:
        if run is not None and not run.started:  # it waited for a thread all along: it never ran
            raise deadline.no_thread() from None
        raise deadline.exceeded() from None
    finally:
        cancel.set()


# How far a run may get ahead of its caller: past either, it waits for the caller to read (a client
# that stops reading holds this much, not everything the run makes).
AHEAD_ITEMS = 16
AHEAD_BYTES = 8 * 1024 * 1024
# A run whose client takes nothing for this long stops (its thread is wanted). Measured from the
# last message handed to the client's connection, so the writing of one message counts too:
# long enough for a message of several MiB over a slow line.
READER_IDLE_SECONDS = 120.0


def _size(item: object) -> int:
    data = getattr(item, "data", None)
    return len(data) if isinstance(data, (bytes, bytearray, memoryview)) else 0


async def iterate_in_thread(
    start: Callable[[threading.Event], Iterator[T]], executor: Executor, run: Run | None = None,
    deadline: Deadline | None = None,
) -> AsyncIterator[T]:
    """Yield what ``start(cancel)`` yields, without ever blocking the loop.

    When the consumer stops early (client cancelled, error) ``cancel`` is set so the generator's
    next check ends its work instead of finishing for nobody. The run waits while it is
    ``AHEAD_ITEMS`` or ``AHEAD_BYTES`` ahead of the consumer. At the ``deadline`` the run is
    cancelled even while the consumer is away (a client that stopped reading leaves the consumer
    in a write, where nothing of this runs), and the consumer gets DeadlineExceeded saying whose
    slowness it was once the items made before it are read.
    """
    loop = asyncio.get_running_loop()
    # Items travel through a deque; the loop is woken only when it is not already due to
    # look. One wake-up per item (a self-pipe write each) cost more than encoding a PNG.
    pending: collections.deque[tuple[object, int]] = collections.deque()  # (item, its bytes)
    room = threading.Condition()
    held = 0  # bytes of the pending items
    wake_scheduled = False
    waiting_for_reader = False  # the run is blocked on a full queue
    taken = time.monotonic()  # when the consumer last took an item
    reader_gone = False  # the run stopped: its client took nothing for READER_IDLE_SECONDS
    ready = asyncio.Event()
    cancel = StopSignal()  # also stops a model run under way
    expired: DeadlineExceeded | None = None

    def wake() -> None:
        nonlocal wake_scheduled
        with room:
            wake_scheduled = False
        ready.set()

    def post(item: object, always: bool = False) -> None:
        nonlocal wake_scheduled, held, waiting_for_reader, reader_gone
        size = _size(item)
        with room:
            while not always and not cancel.is_set() and (
                    len(pending) >= AHEAD_ITEMS or (pending and held + size > AHEAD_BYTES)):
                waiting_for_reader = True
                if time.monotonic() - taken > READER_IDLE_SECONDS:
                    reader_gone = True
                    cancel.set()
                    break
                room.wait(0.5)
            waiting_for_reader = False
            if cancel.is_set() and not always:
                return
            pending.append((item, size))
            held += size
            if wake_scheduled:
                return
            wake_scheduled = True
        try:
            loop.call_soon_threadsafe(wake)
        except RuntimeError:  # loop already closed: nobody is listening any more
            cancel.set()

    made_all = False  # the work ended: the deadline (the generator's) no longer applies

    def work() -> None:
        nonlocal made_all
        if run is not None and not run.begin():  # its call ended before a thread was free
            post(_DONE, always=True)
            return
        try:
            for item in start(cancel):
                if cancel.is_set():
                    break
                post(item)
        except BaseException as exc:
            post(exc, always=True)
        finally:
            with room:
                made_all = True
            if run is not None:  # before _DONE: a consumer that saw the end finds the work done
                run.finished()
            post(_DONE, always=True)

    def out_of_time() -> None:
        nonlocal expired
        assert deadline is not None
        with room:
            if made_all:  # a slow reader of a finished run: what was made is its to read
                return
            slow_reader = waiting_for_reader
            cancel.set()
            room.notify_all()
        expired = deadline.slow_reader() if slow_reader else deadline.exceeded()
        ready.set()

    timer = loop.call_at(deadline.at, out_of_time) if deadline is not None else None
    loop.run_in_executor(executor, work)
    try:
        while True:
            await ready.wait()
            ready.clear()
            while pending:
                with room:
                    item, size = pending.popleft()
                    held -= size
                    taken = time.monotonic()
                    room.notify()
                if item is _DONE:
                    if expired is not None:
                        raise expired
                    if reader_gone:
                        what = deadline.what if deadline else "the call"
                        raise DeadlineExceeded(f"{what}: the client took nothing for "
                                               f"{READER_IDLE_SECONDS:g} s; the rest was not made")
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
            if expired is not None:
                raise expired  # the run may still be inside a plugin that does not look at ``cancel``
    finally:
        if timer is not None:
            timer.cancel()
        with room:
            cancel.set()
            room.notify_all()

"""Blocking work in worker threads, awaited on the event loop within a call's time limit: one
result (``call_in_thread``) or the events of a generator as they come (``iterate_in_thread``).
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from ..engine.errors import DeadlineExceeded
from .call_pool import Run

T = TypeVar("T")
_DONE = object()


@dataclass
class Deadline:
    """One call's time limit, shared by preparing its request and running it."""

    seconds: float
    what: str
    at: float = 0.0

    def __post_init__(self) -> None:
        self.at = asyncio.get_running_loop().time() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.at - asyncio.get_running_loop().time())

    def exceeded(self) -> DeadlineExceeded:
        # "Cancelled", not "stopped": the work is asked to stop, and a plugin may not listen.
        return DeadlineExceeded(f"{self.what} ran past its {self.seconds:g} s limit and was cancelled")


async def call_in_thread(work: Callable[[threading.Event], T], executor: Executor, deadline: Deadline,
                         run: Run | None = None) -> T:
    """``work(cancel)`` in a worker thread within the call's time; ``cancel`` is set once the
    call ends early (cancelled by the client, or out of time), so the work stops too.
    ``run`` is told when the work ends (see :mod:`call_pool`)."""
    cancel = threading.Event()
    job = partial(work, cancel)
    future = asyncio.get_running_loop().run_in_executor(executor, run.wrap(job) if run else job)
    try:
        return await asyncio.wait_for(future, deadline.remaining())
    except asyncio.TimeoutError:
        raise deadline.exceeded() from None
    finally:
        cancel.set()


async def within(events: AsyncIterator[T], deadline: Deadline) -> AsyncIterator[T]:
    """The events, or DeadlineExceeded once the deadline has passed (the work is then cancelled)."""
    iterator = events.__aiter__()
    try:
        while True:
            try:
                item = await asyncio.wait_for(iterator.__anext__(), deadline.remaining())
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                raise deadline.exceeded() from None
            yield item
    finally:
        await iterator.aclose()  # type: ignore[attr-defined]


async def iterate_in_thread(
    start: Callable[[threading.Event], Iterator[T]], executor: Executor, run: Run | None = None
) -> AsyncIterator[T]:
    """Yield what ``start(cancel)`` yields, without ever blocking the loop.

    When the consumer stops early (client cancelled, deadline, error) ``cancel`` is
    set so the generator's next check ends its work instead of finishing for nobody.
    """
    loop = asyncio.get_running_loop()
    # Items travel through a deque; the loop is woken only when it is not already due to
    # look. One wake-up per item (a self-pipe write each) cost more than encoding a PNG.
    pending: collections.deque[object] = collections.deque()
    lock = threading.Lock()
    wake_scheduled = False
    ready = asyncio.Event()
    cancel = threading.Event()

    def wake() -> None:
        nonlocal wake_scheduled
        with lock:
            wake_scheduled = False
        ready.set()

    def post(item: object) -> None:
        nonlocal wake_scheduled
        with lock:
            pending.append(item)
            if wake_scheduled:
                return
            wake_scheduled = True
        try:
            loop.call_soon_threadsafe(wake)
        except RuntimeError:  # loop already closed: nobody is listening any more
            cancel.set()

    def work() -> None:
        try:
            for item in start(cancel):
                if cancel.is_set():
                    break
                post(item)
        except BaseException as exc:
            post(exc)
        finally:
            if run is not None:  # before _DONE: a consumer that saw the end finds the work done
                run.finished()
            post(_DONE)

    loop.run_in_executor(executor, work)
    try:
        while True:
            await ready.wait()
            ready.clear()
            while pending:
                item = pending.popleft()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
    finally:
        cancel.set()

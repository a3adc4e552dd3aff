"""Run a blocking generator in a worker thread and consume its events on the event loop."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(
    start: Callable[[threading.Event], Iterator[T]], executor: Executor
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

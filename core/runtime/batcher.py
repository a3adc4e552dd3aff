"""Dynamic batching per model, with Triton's knobs: max batch size and max queue delay.

Concurrent requests for one model wait in a queue; a worker takes the oldest, gathers
whatever else arrives before its delay runs out (up to the batch limit), runs the
session once on the concatenation and hands each request back its own rows, in order.
A caller that may block (a worker thread, not the event loop) and finds nothing queued
or running, with no queue delay configured, runs the session itself instead: there is
nobody to batch with, and the hand-offs would cost as much as a small model's run.

Requests are validated before they are queued; should a merged run fail all the same,
each of its requests runs again alone, so one bad request never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .statistics import ModelStatistics
from .stop import RunStopped, StopSignal

log = logging.getLogger("museforge.batcher")

Outputs = dict[str, np.ndarray]
# ``run(feed)``, or ``run(feed, stops)`` with the cancel flags of the run's requests when each has one.
RunFn = Callable[..., Outputs]


@dataclass(frozen=True)
class BatchingOptions:
    enabled: bool = True
    max_batch_size: int = 64
    max_queue_delay_us: int = 0
    instances: int = 1  # concurrent session runs of this model
    # Merging pays off for small requests (one run's fixed cost shared); a request whose
    # inputs are this big already keeps the cores busy and is run on its own.
    max_merge_bytes: int = 256 * 1024
    max_queue_size: int = 0  # requests waiting or running at once; 0: no bound (Triton's default)


class QueueFull(RuntimeError):
    """The model already holds ``max_queue_size`` requests: the caller should retry later."""


class BatcherClosed(RuntimeError):
    """The batcher was closed (its model reloaded or unloaded): the caller looks the model up again."""


@dataclass
class _Pending:
    inputs: Mapping[str, np.ndarray]
    size: int
    future: Future[Outputs]
    enqueued_ns: int = field(default_factory=time.perf_counter_ns)
    # An event-loop caller's own future: the outcome reaches it in one loop callback per batch.
    waiter: asyncio.Future[Outputs] | None = None
    alone: bool = False  # nothing was queued or running when it came in
    stop: threading.Event | None = None  # the request's cancel flag (see museforge.runtime.stop)

    @cached_property
    def nbytes(self) -> int:  # asked on submitting and again on batching
        return sum(a.nbytes for a in self.inputs.values())

    def stacks_with(self, other: _Pending) -> bool:
        """Same inputs, dtypes and non-batch shapes: the two can share one session run."""
        if self.inputs.keys() != other.inputs.keys():
            return False
        return all(
            a.dtype == b.dtype and a.shape[1:] == b.shape[1:]
            for a, b in ((self.inputs[n], other.inputs[n]) for n in self.inputs)
        )


_STOP = object()


class _Batch:
    """The requests gathered for one session run, and whether one more may join."""

    def __init__(self, first: _Pending, options: BatchingOptions) -> None:
        self.items = [first]
        self.size = first.size
        self.nbytes = first.nbytes
        self.options = options
        self.full = self._at_limit()

    def _at_limit(self) -> bool:
        return self.size >= self.options.max_batch_size or self.nbytes >= self.options.max_merge_bytes

    def add(self, item: _Pending) -> bool:
        """Take ``item`` if it stacks and fits (a cancelled one is taken and dropped later)."""
        if not self.items[0].stacks_with(item):
            return False
        if (self.size + item.size > self.options.max_batch_size
                or self.nbytes + item.nbytes > self.options.max_merge_bytes):
            self.full = True  # nothing more joins: the run starts with what it has
            return False
        self.items.append(item)
        self.size += item.size
        self.nbytes += item.nbytes
        self.full = self._at_limit()
        return True


class DynamicBatcher:
    """Merges concurrent requests for one model into shared session runs."""

    def __init__(self, name: str, run: RunFn, options: BatchingOptions,
                 stats: ModelStatistics) -> None:
        self.name = name
        self.run = run
        self.options = options
        self.stats = stats
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        # Requests queued, held by a worker or running: one may run in its caller's thread
        # only when this is zero, so it never overtakes anyone.
        self._busy = 0
        self._lock = threading.Lock()
        # Session runs at once, inline ones included, stay within ``instances``.
        self._slots = threading.BoundedSemaphore(max(1, options.instances))
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"batcher-{name}-{i}", daemon=True)
            for i in range(max(1, options.instances))
        ]
        for worker in self._workers:
            worker.start()

    @property
    def busy(self) -> int:
        """Requests queued, held by a worker or running."""
        return self._busy

    def submit(self, inputs: Mapping[str, np.ndarray], inline: bool = False,
               stop: threading.Event | None = None) -> Future[Outputs]:
        """Queue one request (already validated); its rows come back in the future.

        ``inline``: the caller may block (never the event loop), so when the model is
        idle it runs the session itself and the future is done on return. An
        autoregressive loop calls once per token; the two thread hand-offs through the
        queue cost about as much as a small model's run. ``stop``: the request's cancel flag.
        """
        pending = self._admit(inputs)
        pending.stop = stop
        if inline and pending.future is not None and self._run_inline(pending):
            return pending.future
        self._queue.put(pending)
        return pending.future

    def submit_async(self, inputs: Mapping[str, np.ndarray]) -> asyncio.Future[Outputs]:
        """Queue one request from the event loop; await the returned future.

        The batch's worker wakes the loop once per batch (not once per request): with
        tiny requests the cross-thread wake-ups cost more than the model's share of a run.
        Cancelling the future (the call ended) drops the request if it has not started, and
        stops a big one's run under way.
        """
        loop = asyncio.get_running_loop()
        pending = self._admit(inputs)
        waiter: asyncio.Future[Outputs] = loop.create_future()
        pending.waiter = waiter
        future = pending.future
        # A big request runs alone, maybe for long: it may be stopped. Tiny calls skip the signal's
        # cost; theirs are over in a moment anyway.
        stop = pending.stop = StopSignal() if pending.nbytes >= self.options.max_merge_bytes else None

        def ended(w: asyncio.Future[Outputs]) -> None:
            if w.cancelled():
                future.cancel()
                if stop is not None:
                    stop.set()

        waiter.add_done_callback(ended)
        self._queue.put(pending)
        return waiter

    def _admit(self, inputs: Mapping[str, np.ndarray]) -> _Pending:
        """Count one more request in, or refuse it (closed, or the queue is full)."""
        size = len(next(iter(inputs.values())))
        pending = _Pending(inputs, size, Future())
        with self._lock:
            if self._closed:
                raise BatcherClosed(f"model {self.name}: the batcher is closed")
            if self.options.max_queue_size and self._busy >= self.options.max_queue_size:
                raise QueueFull(f"model {self.name} has {self._busy} requests queued or running "
                                f"(max_queue_size {self.options.max_queue_size})")
            pending.alone = self._busy == 0
            self._busy += 1
        return pending

    def _run_inline(self, pending: _Pending) -> bool:
        """Run in the caller's thread when nobody else is queued or running (see ``submit``)."""
        if not (pending.alone and self.options.max_queue_delay_us == 0
                and self._slots.acquire(blocking=False)):
            return False
        pending.future.set_running_or_notify_cancel()
        try:
            self._execute([pending], pending.size, release=1)
        finally:
            self._slots.release()
        return True

    def _release(self, count: int) -> None:
        with self._lock:
            self._busy -= count
            if self._closed and self._busy == 0:
                self._stop_workers()

    def close(self) -> None:
        """Take no new request; the workers stop once every admitted one has its outcome.

        A request admitted just before the close may reach the queue just after it: stopping
        only when none is left (rather than queueing the stops now) never strands one.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._busy == 0:
                self._stop_workers()

    def _stop_workers(self) -> None:
        for _ in self._workers:
            self._queue.put(_STOP)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the workers of a closed batcher to stop; True when all have."""
        for worker in self._workers:
            worker.join(timeout)
        return not any(w.is_alive() for w in self._workers)

    # -- worker --------------------------------------------------------------------------------

    def _work(self) -> None:
        # Requests taken from the queue that could not join the batch being formed (too
        # big, or of another shape): they lead the next batches, in arrival order.
        backlog: deque[_Pending] = deque()
        delay_ns = self.options.max_queue_delay_us * 1000
        while True:
            first: object = backlog.popleft() if backlog else self._queue.get()
            if first is _STOP:
                return
            assert isinstance(first, _Pending)
            if first.future.cancelled():
                self._release(1)
                self._dropped([first])
                continue  # cancelled while queued: never computed
            batch = _Batch(first, self.options)
            waiting, backlog = backlog, deque()
            for held in waiting:
                if not batch.add(held):
                    backlog.append(held)
            deadline = first.enqueued_ns + delay_ns
            while not batch.full:
                remaining = (deadline - time.perf_counter_ns()) / 1e9
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else \
                        self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)
                    break
                assert isinstance(item, _Pending)
                if not batch.add(item):
                    backlog.append(item)
            # Claim the requests only now: one cancelled while the batch was forming is
            # dropped here and never computed.
            claimed = [p for p in batch.items if p.future.set_running_or_notify_cancel()]
            self._dropped([p for p in batch.items if p.future.cancelled()])
            if not claimed:
                self._release(len(batch.items))
                continue
            with self._slots:
                self._execute(claimed, sum(p.size for p in claimed), release=len(batch.items))

    def _dropped(self, cancelled: list[_Pending]) -> None:
        """Requests cancelled before their run count as failed, as a cancelled run's do: the
        statistics then say the same whichever side of the run's start the cancel fell."""
        now = time.perf_counter_ns()
        for pending in cancelled:
            self.stats.record_request(ok=False, total_ns=now - pending.enqueued_ns, queue_ns=0)

    def _execute(self, batch: list[_Pending], total: int, release: int) -> None:
        """Run one batch; ``release`` requests leave the busy count before results go out
        (so a caller's next request already sees the model idle)."""
        started = time.perf_counter_ns()
        try:
            if len(batch) == 1:
                feed = dict(batch[0].inputs)
            else:
                names = list(batch[0].inputs)
                feed = {n: np.concatenate([p.inputs[n] for p in batch], axis=0) for n in names}
            inputs_done = time.perf_counter_ns()
            stops = [p.stop for p in batch]
            outputs = self.run(feed, stops) if all(s is not None for s in stops) else self.run(feed)
            infer_done = time.perf_counter_ns()
            if len(batch) == 1:
                results = [outputs]
            else:
                offsets = np.cumsum([p.size for p in batch])[:-1]
                parts = {name: np.split(value, offsets, axis=0) for name, value in outputs.items()}
                results = [{name: parts[name][i] for name in outputs} for i in range(len(batch))]
            output_done = time.perf_counter_ns()
        except RunStopped as exc:  # all of them were cancelled: nobody to run again for
            self._fail(batch, release, exc)
            return
        except Exception as exc:
            if len(batch) > 1:
                self._isolate(batch, release, exc)
            else:
                self._fail(batch, release, exc)
            return
        except BaseException as exc:  # never the worker: its batch fails, the thread lives on
            self._fail(batch, release, exc)
            return
        self._release(release)
        self.stats.record_execution(
            batch_size=total, requests=len(batch), input_ns=inputs_done - started,
            infer_ns=infer_done - inputs_done, output_ns=output_done - infer_done,
        )
        for pending in batch:
            self.stats.record_request(ok=True, total_ns=output_done - pending.enqueued_ns,
                                      queue_ns=started - pending.enqueued_ns)
        _settle(batch, results, None)

    def _isolate(self, batch: list[_Pending], release: int, exc: Exception) -> None:
        """A merged run failed: run each request alone, so only one that fails on its own fails.

        The failed run produced nothing and is not counted; each lone run counts as its own.
        """
        log.warning("model %s: a merged run of %d requests failed (%s: %s); running each alone",
                    self.name, len(batch), type(exc).__name__, exc)
        self._release(release - len(batch))  # the cancelled ones dropped from this batch
        for pending in batch:
            self._execute([pending], pending.size, release=1)

    def _fail(self, batch: list[_Pending], release: int, exc: BaseException) -> None:
        if isinstance(exc, ValueError):  # inputs the model refused: the caller's, not ours
            log.info("model %s: request refused: %s", self.name, exc)
        elif isinstance(exc, RunStopped):
            log.debug("%s", exc)
        elif not isinstance(exc, Exception):  # Ctrl-C in the caller's thread (an idle model runs there)
            log.debug("model %s: batch stopped by %s", self.name, type(exc).__name__)
        else:
            log.error("model %s: batch of %d failed", self.name, sum(p.size for p in batch),
                      exc_info=exc)
        self._release(release)
        now = time.perf_counter_ns()
        for p in batch:
            self.stats.record_request(ok=False, total_ns=now - p.enqueued_ns, queue_ns=0)
        _settle(batch, None, exc)


def _settle(batch: list[_Pending], results: list[Outputs] | None, exc: BaseException | None) -> None:
    """Hand each request its outcome; event-loop callers get theirs in one callback per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outputs], Outputs | None]]] = {}
    for i, pending in enumerate(batch):
        result = results[i] if results is not None else None
        if result is not None:
            pending.future.set_result(result)
        else:
            pending.future.set_exception(exc)
        if pending.waiter is not None:
            by_loop.setdefault(pending.waiter.get_loop(), []).append((pending.waiter, result))
    for loop, waiters in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_wake, waiters, exc)


def _wake(waiters: list[tuple[asyncio.Future[Outputs], Outputs | None]], exc: BaseException | None) -> None:
    for waiter, result in waiters:
        if waiter.done():  # cancelled meanwhile: the call has ended
            continue
        if result is not None:
            waiter.set_result(result)
        else:
            waiter.set_exception(exc)  # type: ignore[arg-type]

"""The local job executor: one job at a time, its frames on a bounded pool of worker threads.

Frames of one job run concurrently, so the runtime's dynamic batcher merges their tiles
into shared session runs. A job found unfinished at start-up (the server died or was
stopped under it) resumes: items already DONE stay done, the rest run again; since
every output is written atomically before its item is committed, nothing is lost or
done twice.

A job over a video file runs its ranges the same way, then its last item, which joins their
parts into the output (see :mod:`museforge.jobs.video_items`); a cancelled or failed one
leaves no parts behind.

Starting a job and cancelling it take the same lock, so a cancel that arrives while the
job is being picked up is never lost: either the job sees it before it starts, or it is
registered as running and the cancel stops it.

A job store that stops taking writes (its disk full, an I/O error) pauses the job: its
frames stop, it stays RUNNING in the store (so a restart resumes it) and is reported
PAUSED with the reason until it runs again, which it tries every ``retry_paused_seconds``
and whenever a new job is recorded (proof that the store takes writes again). Frames
finished but not recorded are simply done again then, byte for byte the same.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ..engine.catalogue import Engine
from ..runtime.stop import StopSignal
from .chain import FrameLimits, discard_stale_writes_of
from .item_work import ItemWork
from .paths import PathRefused, Sandbox
from .store import Item, ItemState, Job, JobState, JobStore, StoreError
from .video_items import VideoJob, discard_parts, join_item

log = logging.getLogger("museforge.jobs")
EXECUTOR_NAME = "local"


@dataclass
class _Running:
    job_id: str
    cancel: threading.Event
    frames: set[threading.Event] = field(default_factory=set)  # one per frame in flight
    paused: StoreError | None = None  # the store failed to record a frame: stop, and pause the job


class LocalExecutor:
    """Runs queued jobs from the store until closed."""

    name = EXECUTOR_NAME
    retry_paused_seconds = 30.0

    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        sandbox: Sandbox,
        workers: int = 2,
        limits: FrameLimits | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.sandbox = sandbox
        self.workers = workers
        self.limits = limits or FrameLimits()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._running: _Running | None = None
        self._paused: dict[str, StoreError] = {}  # job id -> why its progress cannot be recorded
        self._retrying: set[str] = set()  # paused jobs queued again, not yet begun
        self._closing = False
        self._lock = threading.Lock()
        # job id -> its entries in the queue or running: a poller hands over only jobs not held
        # (a retried job is QUEUED again under the same id, perhaps before its last run returned).
        self._held: Counter[str] = Counter()
        self._held_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="museforge-jobs", daemon=True)

    def start(self) -> LocalExecutor:
        # Every unfinished job is this server's to finish, whichever executor began it.
        for job in self.store.jobs([JobState.RUNNING, JobState.QUEUED]):
            log.info("resuming job %s (%d of %d items done)", job.id, job.done, job.total)
            self._enqueue(job.id)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop: in-flight frames stop at their next tile; unfinished jobs resume on the next start."""
        with self._lock:
            self._closing = True
            if self._running is not None:
                self._stop_running(self._running)
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, job_id: str) -> None:
        self._requeue_paused()  # the store just recorded a job: it takes writes again
        self._enqueue(job_id)

    def holds(self, job_id: str) -> bool:
        """Whether the job is queued, running or paused here (it will run without being handed over)."""
        with self._held_lock:
            return self._held[job_id] > 0 or job_id in self._paused

    def _enqueue(self, job_id: str) -> None:
        with self._held_lock:
            self._held[job_id] += 1
        self._queue.put(job_id)

    def paused(self, job_id: str) -> StoreError | None:
        """Why the job is paused (the store failed to record its progress), or None."""
        return self._paused.get(job_id)  # no lock: the event loop asks, and the lock waits on fsyncs

    def _pause(self, job_id: str, error: StoreError) -> None:
        log.warning("job %s paused: %s; it resumes once the store takes writes again", job_id, error)
        with self._lock:
            self._paused[job_id] = error

    def _requeue_paused(self) -> None:
        with self._lock:
            waiting = [job_id for job_id in self._paused if job_id not in self._retrying]
            self._retrying.update(waiting)
        for job_id in waiting:
            self._enqueue(job_id)

    def cancel(self, job_id: str) -> None:
        """Stop a job: in-flight frames stop at their next tile, the rest are skipped."""
        if not self.store.request_cancel(job_id):
            return  # unknown or already finished
        with self._lock:
            if self._running is not None and self._running.job_id == job_id:
                self._stop_running(self._running)
                return
            self._finish_cancelled(job_id)  # not running here: nothing will pick it up again

    def _stop_running(self, running: _Running) -> None:
        """Stop the running job's frames (called with the lock held)."""
        running.cancel.set()
        for frame in running.frames:
            frame.set()

    # -- the loop --------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            try:
                job_id = self._queue.get(timeout=self.retry_paused_seconds if self._paused else None)
            except queue.Empty:
                self._requeue_paused()
                continue
            if job_id is None:
                return
            try:
                self._run_held(job_id)
            except Exception as exc:  # a bug or a broken store must not leave the job RUNNING
                if self._closing:  # torn down under it (e.g. Ray shut down): resume on the next start
                    log.warning(
                        "job %s interrupted by shutdown (%s); it resumes on the next start", job_id, exc
                    )
                    continue
                if isinstance(exc, StoreError):
                    self._pause(job_id, exc)
                    continue
                log.exception("job %s failed unexpectedly", job_id)
                try:
                    self._fail_pending(job_id, f"the executor failed: {type(exc).__name__}: {exc}")
                except StoreError as error:
                    self._pause(job_id, error)
                except Exception:  # a second failure: the job resumes on the next start
                    log.exception("job %s could not be marked failed", job_id)

    def _run_held(self, job_id: str) -> None:
        try:
            self._run(job_id)
        finally:  # a paused job stays held through _paused
            with self._held_lock:
                self._held[job_id] -= 1
                if self._held[job_id] <= 0:
                    del self._held[job_id]

    def _begin(self, job_id: str) -> tuple[Job, _Running] | None:
        """Mark the job RUNNING and register it, unless it is finished, cancelled or we are closing."""
        with self._lock:
            self._retrying.discard(job_id)
            if self._closing:
                return None
            job = self.store.get(job_id)
            if job is None or job.state.finished:
                return None
            if job.cancel_requested:
                self._finish_cancelled(job_id)
                return None
            if not self.store.set_state(
                job_id, JobState.RUNNING, only_from=(JobState.QUEUED, JobState.RUNNING)
            ):
                return None
            self._paused.pop(job_id, None)  # the store took that write: try again
            self._running = _Running(job_id, StopSignal())
            return job, self._running

    def _run(self, job_id: str) -> None:
        begun = self._begin(job_id)
        if begun is None:
            return
        job, running = begun
        try:
            self._run_items(job, running)
            self._join_video(job, running)
        finally:
            with self._lock:
                self._running = None
                closing = self._closing
        if running.paused is not None:
            raise running.paused  # stays RUNNING in the store; _loop reports it paused
        current = self.store.get(job_id)
        if current is None:
            return
        if current.cancel_requested:
            with self._lock:
                self._finish_cancelled(job_id)
            return
        if closing and running.cancel.is_set():
            return  # stopped by shutdown: stays RUNNING and resumes on the next start
        if self.store.items(job_id, [ItemState.PENDING]):
            self._fail_pending(job_id, "not done: the executor stopped without an outcome for it")
            return
        if current.failed:
            self._discard_stale_writes(job_id)
        self.store.set_state(
            job_id, JobState.FAILED if current.failed else JobState.SUCCEEDED, only_from=(JobState.RUNNING,)
        )

    def _run_items(self, job: Job, running: _Running) -> None:
        """Run the pending items until done, cancelled or closing."""
        work = ItemWork.of(job.spec)
        pending = work.side_by_side(self.store.items(job.id, [ItemState.PENDING]), job.total)
        in_flight: set[Future[None]] = set()
        with ThreadPoolExecutor(self.workers, thread_name_prefix=f"museforge-job-{job.id[:6]}") as pool:
            for item in pending:
                if running.cancel.is_set():
                    break
                if len(in_flight) >= self.workers:
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    _raise_first(finished)
                in_flight.add(pool.submit(self._run_item, item, work, running))
            finished, _ = wait(in_flight)
            _raise_first(finished)

    def _run_item(self, item: Item, work: ItemWork, running: _Running) -> None:
        frame = StopSignal()  # set by a cancel, a shutdown or this frame's time limit
        with self._lock:
            if running.cancel.is_set():
                return
            running.frames.add(frame)
        try:
            state, error = work.run(self.engine, self.sandbox, item, frame, self.limits)
        finally:
            with self._lock:
                running.frames.discard(frame)
        if state is not None:  # None: stopped with nothing written, still pending
            self._record(running, item.index, state, error)

    def _join_video(self, job: Job, running: _Running) -> None:
        """A video job's last item, once the ranges have run: join them into the output (or fail,
        naming the first range not done)."""
        video = VideoJob.of(job.spec)
        if video is None or running.cancel.is_set() or running.paused is not None:
            return
        items = self.store.items(job.id)
        if items[-1].state == ItemState.PENDING:
            state, error = join_item(self.sandbox, video, items[:-1])
            self._record(running, items[-1].index, state, error)

    def _discard_parts(self, job_id: str) -> None:
        """A video job that will not be joined leaves no parts behind."""
        job = self.store.get(job_id)
        video = None if job is None else VideoJob.of(job.spec)
        if video is not None:
            discard_parts(self.sandbox, video)
        self._discard_stale_writes(job_id)

    def _discard_stale_writes(self, job_id: str) -> None:
        """No temporary file of a writer killed before a restart outlives its job: a frame run
        again removes its own before writing, but one cancelled or failed never is."""
        targets = []
        for item in self.store.items(job_id, [ItemState.PENDING, ItemState.FAILED, ItemState.SKIPPED]):
            try:
                targets.append(self.sandbox.output_path(item.output))
            except PathRefused as exc:  # the roots changed since
                log.debug("job %s item %d: temporary files left: %s", job_id, item.index, exc)
        discard_stale_writes_of(targets)

    def _record(self, running: _Running, index: int, state: ItemState, error: str) -> None:
        """Commit an item's outcome; if the store cannot, stop the job's frames (it pauses)."""
        try:
            self.store.finish_item(running.job_id, index, state, error)
        except StoreError as exc:
            with self._lock:
                running.paused = running.paused or exc
                self._stop_running(running)

    def _finish_cancelled(self, job_id: str) -> None:
        self.store.skip_pending(job_id)
        self._discard_parts(job_id)
        self.store.set_state(job_id, JobState.CANCELLED, only_from=(JobState.QUEUED, JobState.RUNNING))
        self._paused.pop(job_id, None)

    def _fail_pending(self, job_id: str, reason: str) -> None:
        """Give every item still pending a FAILED outcome with ``reason``, and end the job FAILED."""
        for item in self.store.items(job_id, [ItemState.PENDING]):
            self.store.finish_item(job_id, item.index, ItemState.FAILED, reason)
        self._discard_parts(job_id)
        self.store.set_state(job_id, JobState.FAILED, only_from=(JobState.QUEUED, JobState.RUNNING))


def _raise_first(futures: set[Future[None]]) -> None:
    """Re-raise a worker's unexpected error (a store failure), so the job does not end SUCCEEDED."""
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error

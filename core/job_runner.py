"""The local job executor: one job at a time, its frames on a bounded pool of worker threads.

Frames of one job run concurrently, so the runtime's dynamic batcher merges their tiles
into shared session runs. A job found RUNNING or QUEUED at start-up (the server died
under it) resumes: items already DONE stay done, the rest run again; since every output
is written atomically before its item is committed, nothing is lost or done twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .engine import Engine
from .job_chain import ItemCancelled, ItemError, run_chain, write_atomic
from .job_paths import PathRefused, Sandbox
from .job_plan import Step, steps_of
from .job_store import Item, ItemState, Job, JobState, JobStore

log = logging.getLogger("museforge.jobs")
EXECUTOR_NAME = "local"


@dataclass
class _Running:
    job_id: str
    cancel: threading.Event


class LocalExecutor:
    """Runs queued jobs from the store until closed."""

    name = EXECUTOR_NAME

    def __init__(self, store: JobStore, engine: Engine, sandbox: Sandbox, workers: int = 2) -> None:
        self.store = store
        self.engine = engine
        self.sandbox = sandbox
        self.workers = workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._running: _Running | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="museforge-jobs", daemon=True)

    def start(self) -> LocalExecutor:
        for job in self.store.jobs([JobState.RUNNING, JobState.QUEUED]):
            if job.executor == self.name:
                log.info("resuming job %s (%d of %d items done)", job.id, job.done, job.total)
                self._queue.put(job.id)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._running is not None:
                self._stop_running(self._running.cancel)  # the job resumes on the next start
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def cancel(self, job_id: str) -> None:
        """Stop a job: in-flight frames stop at their next tile, the rest are skipped."""
        if not self.store.request_cancel(job_id):
            return
        with self._lock:
            if self._running is not None and self._running.job_id == job_id:
                self._stop_running(self._running.cancel)
                return
        job = self.store.get(job_id)
        if job is not None and job.state == JobState.QUEUED:
            self._finish_cancelled(job_id)

    def _stop_running(self, cancel: threading.Event) -> None:
        """Stop the running job's frames (in-flight ones stop at their next tile)."""
        cancel.set()

    # -- the loop --------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception:  # a bug must not stop every later job
                log.exception("job %s failed unexpectedly", job_id)

    def _run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.state.finished:
            return
        if job.cancel_requested:
            self._finish_cancelled(job_id)
            return
        if not self.store.set_state(job_id, JobState.RUNNING, only_from=(JobState.QUEUED, JobState.RUNNING)):
            return
        running = _Running(job_id, threading.Event())
        with self._lock:
            self._running = running
        try:
            stopped = self._run_items(job, running.cancel)
        finally:
            with self._lock:
                self._running = None
        if stopped:
            current = self.store.get(job_id)
            if current is not None and current.cancel_requested:
                self._finish_cancelled(job_id)
            return  # closing: the job stays RUNNING and resumes on the next start
        final = self.store.get(job_id)
        if final is not None:
            self.store.set_state(
                job_id, JobState.FAILED if final.failed else JobState.SUCCEEDED, only_from=(JobState.RUNNING,)
            )

    def _run_items(self, job: Job, cancel: threading.Event) -> bool:
        """Run the pending items; True if stopped early (cancel or close)."""
        pending = self.store.items(job.id, [ItemState.PENDING])
        steps = steps_of(job.spec)
        seed = int(job.spec["seed"])
        fmt = str(job.spec.get("format", ""))
        in_flight: set[Future[None]] = set()
        with ThreadPoolExecutor(self.workers, thread_name_prefix=f"museforge-job-{job.id[:6]}") as pool:
            for item in pending:
                if cancel.is_set():
                    break
                if len(in_flight) >= self.workers:
                    _, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                in_flight.add(pool.submit(self._run_item, job.id, item, steps, seed, fmt, cancel))
            wait(in_flight)
        return cancel.is_set()

    def _run_item(
        self,
        job_id: str,
        item: Item,
        steps: Sequence[Step],
        seed: int,
        fmt: str,
        cancel: threading.Event,
    ) -> None:
        try:
            source = self.sandbox.input_path(item.input)
            target = self.sandbox.output_path(item.output)
            if not source.is_file():
                raise ItemError(f"input {item.input} not found")
            result = run_chain(self.engine, steps, source.read_bytes(), item.input, fmt, seed, cancel)
            write_atomic(target, result)
        except ItemCancelled:
            return  # nothing written; still pending
        except (ItemError, PathRefused, OSError) as exc:
            self.store.finish_item(job_id, item.index, ItemState.FAILED, str(exc))
            return
        except Exception as exc:  # an effect's own bug fails this frame alone
            log.exception("job %s item %d failed", job_id, item.index)
            self.store.finish_item(job_id, item.index, ItemState.FAILED, f"{type(exc).__name__}: {exc}")
            return
        self.store.finish_item(job_id, item.index, ItemState.DONE)

    def _finish_cancelled(self, job_id: str) -> None:
        self.store.skip_pending(job_id)
        self.store.set_state(job_id, JobState.CANCELLED, only_from=(JobState.QUEUED, JobState.RUNNING))

"""Jobs when several server processes share one port (``serve --workers N``).

Exactly one worker, the leader, runs the job executor; every worker takes job calls. The
SQLite store (WAL, shared by all) is how they meet: a worker records a submitted (or retried)
job or a cancel request in the store, and the leader's poller finds it there and hands it to
its executor. The leader's own calls reach its executor at once; the poller hands over only a
queued job the executor does not already hold, and each cancel request once.

Handing a job over twice would do no harm anyway: the executor runs one job at a time,
skips a job that has finished and redoes only items still pending, so every item is done
once.
"""

from __future__ import annotations

import logging
import threading

from .runner import LocalExecutor
from .store import JobState, JobStore, StoreError

log = logging.getLogger("museforge.jobs")

POLL_SECONDS = 0.1  # how soon a job submitted (or cancelled) through another worker is seen


class LeaderJobs:
    """The leader's executor, plus a poller that picks up what the other workers recorded."""

    def __init__(self, executor: LocalExecutor, store: JobStore, poll_seconds: float = POLL_SECONDS) -> None:
        self.executor = executor
        self.store = store
        self.name = executor.name
        self.poll_seconds = poll_seconds
        self._cancelled: set[str] = set()  # cancel requests handed over (dropped once a retry clears one)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="museforge-jobs-poller", daemon=True)

    def start(self) -> LeaderJobs:
        self._thread.start()
        return self

    def submit(self, job_id: str) -> None:
        with self._lock:
            self._cancelled.discard(job_id)  # a retried job's earlier cancel is over
        self.executor.submit(job_id)

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancelled.add(job_id)
        self.executor.cancel(job_id)

    def paused(self, job_id: str) -> StoreError | None:
        return self.executor.paused(job_id)

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.executor.close(timeout)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.pick_up()
            except StoreError as exc:  # the store is failing: the executor reports it on its jobs
                log.debug("jobs poller: %s", exc)
            except Exception:  # never the poller: the next round tries again
                log.exception("jobs poller failed")

    def pick_up(self) -> None:
        """Hand the executor every queued job it does not hold and every cancel request it has
        not seen yet. A job finished and retried between two polls is QUEUED again under the same
        id, its cancel request cleared: asking the executor, not a memory of ids, finds it."""
        unfinished = self.store.jobs([JobState.QUEUED, JobState.RUNNING])
        submit: list[str] = []
        cancel: list[str] = []
        with self._lock:
            self._cancelled &= {job.id for job in unfinished if job.cancel_requested}
            for job in unfinished:
                if job.cancel_requested and job.id not in self._cancelled:
                    self._cancelled.add(job.id)
                    cancel.append(job.id)
                # Cancel requested or not: a queued job the executor does not hold is run (or, for
                # a cancel, ended) by it, whatever this poller remembers handing over before.
                if job.state == JobState.QUEUED and not self.executor.holds(job.id):
                    submit.append(job.id)
        for job_id in cancel:
            self.executor.cancel(job_id)
        for job_id in submit:
            self.executor.submit(job_id)


class FollowerJobs:
    """A worker without the executor: it records, and the leader runs."""

    def __init__(self, store: JobStore, name: str) -> None:
        self.store = store
        self.name = name  # the leader's executor's, recorded with each job

    def submit(self, job_id: str) -> None:
        """Nothing to do: the job is in the store, where the leader's poller finds it."""

    def cancel(self, job_id: str) -> None:
        """Record the request; the leader stops the job (or skips it) once its poller sees it."""
        self.store.request_cancel(job_id)

    def paused(self, job_id: str) -> StoreError | None:
        return None  # only the leader knows; its store writes are what failed

    def close(self, timeout: float = 10.0) -> None:
        return None

"""One executor per jobs database, however many servers open it.

Every server defaults to the same data directory, so a second ``museforge serve`` (a test
server, another port) opens the jobs database the first one is running. Both used to resume
and run every unfinished job: each frame computed twice, a cancel sent through one server left
the other writing frames, and a server with other input roots failed the first one's jobs.

Now the server that holds the executor lease (an exclusive ``flock`` on a file beside the
database, let go by the kernel when its process ends, however it ends) runs the jobs; any
other records the jobs and cancels it is sent in the store, where the holder's poller finds
them, exactly as a ``--workers`` follower does, and takes the lease over should the holder stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from .runner import LocalExecutor
from .store import JobStore, StoreError
from .worker_jobs import FollowerJobs, LeaderJobs

log = logging.getLogger("museforge.jobs")

RETRY_SECONDS = 1.0  # how soon a waiting server notices that the holder has stopped
LONE_POLL_SECONDS = 0.5  # how soon the holder sees a job recorded through another server


class ExecutorLease:
    """The exclusive right to run a jobs database's jobs, held through an open, locked file."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".executor-lock")
        self._fd: int | None = None

    def try_take(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())  # for the other servers' message, nothing more
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds it, as far as the file says: "pid N" or "another process"."""
        with contextlib.suppress(OSError, ValueError):
            return f"pid {int(self.path.read_text().strip())}"
        return "another process"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with the last descriptor of its open file
            self._fd = None


class LeasedJobs:
    """A server's executor when it holds the lease, a follower's recording until it does."""

    def __init__(self, store: JobStore, lease: ExecutorLease, start_executor: Callable[[], LocalExecutor],
                 name: str, poll_seconds: float = LONE_POLL_SECONDS, retry_seconds: float = RETRY_SECONDS
                 ) -> None:
        self.store = store
        self.name = name
        self._lease = lease
        self._start_executor = start_executor
        self._follower = FollowerJobs(store, name)
        self._leader: LeaderJobs | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._waiter: threading.Thread | None = None
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds

    def start(self, may_run: bool = True) -> LeasedJobs:
        """Take the lease, or wait for it; ``may_run`` False (a server without job roots, which
        could run no job): never, and jobs it is sent are left to a server that can."""
        if not may_run:
            return self
        if not self._take():
            log.warning("jobs: %s already runs the jobs in %s; this server records the jobs it is sent "
                        "for that one to run, and takes over if it stops (give each server its own "
                        "data_dir to keep their jobs apart)", self._lease.holder(), self.store.path)
            self._waiter = threading.Thread(target=self._wait_for_lease, name="museforge-jobs-lease",
                                            daemon=True)
            self._waiter.start()
        return self

    @property
    def running_jobs(self) -> bool:
        """Whether this server runs the jobs (holds the lease)."""
        return self._leader is not None

    def _take(self) -> bool:
        with self._lock:
            if self._stop.is_set() or not self._lease.try_take():
                return False
            try:
                self._leader = LeaderJobs(self._start_executor(), self.store, self._poll_seconds).start()
            except BaseException:
                self._lease.release()
                raise
            return True

    def _wait_for_lease(self) -> None:
        while not self._stop.wait(self._retry_seconds):
            try:
                if self._take():
                    log.info("jobs: the server that ran the jobs in %s stopped; this one runs them now",
                             self.store.path)
                    return
            except Exception:  # never the waiter: the next round tries again
                log.exception("jobs: taking over the executor failed")

    def _current(self) -> LeaderJobs | FollowerJobs:
        return self._leader or self._follower

    def submit(self, job_id: str) -> None:
        self._current().submit(job_id)

    def cancel(self, job_id: str) -> None:
        self._current().cancel(job_id)

    def paused(self, job_id: str) -> StoreError | None:
        return self._current().paused(job_id)

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stop.set()
        if self._waiter is not None:
            self._waiter.join(timeout)
        if self._leader is not None:
            self._leader.close(timeout)
        self._lease.release()

"""Durable job records: SQLite in WAL mode, one row per job and one per item (frame).

Every state change is its own committed transaction (``synchronous=FULL``), taken after
the item's output file is in place, so a crash loses at most the items in flight, and
those are simply done again. ``seq`` numbers every item change in commit order, which
is how watchers and the executors on other machines see progress without callbacks.

A database that fails (its disk full, an I/O error, made read-only) raises StoreError,
which says so in plain words: SQLite's own text (and the file's path) stays in the log.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

log = logging.getLogger("museforge.jobs")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    spec TEXT NOT NULL,            -- the JobSpec as JSON (json_format), seed included
    state INTEGER NOT NULL,
    executor TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0  -- durable: a restart still cancels
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    frame INTEGER NOT NULL,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    state INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS items_by_seq ON items (job_id, seq);
CREATE INDEX IF NOT EXISTS items_seq ON items (seq);  -- MAX(seq) on every commit stays a lookup
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created);
"""


class JobState(IntEnum):
    """Mirrors museforge.v1.JobState."""

    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5
    PAUSED = 6  # never stored: the executor's view of a RUNNING job it cannot record

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class ItemState(IntEnum):
    """Mirrors museforge.v1.ItemState."""

    PENDING = 1
    DONE = 2
    FAILED = 3
    SKIPPED = 4


# SQLite's primary result codes (the low byte of an extended one): the text Python < 3.11
# gives instead, and what it means in plain words.
SQLITE_FULL = 13
MAX_ERROR_CHARS = 1000  # an item's error: listed with every page of items
REASONS = {
    SQLITE_FULL: ("is full", "its disk is full"),
    8: ("readonly", "it is read-only"),
    10: ("I/O error", "its disk reports an I/O error"),
    11: ("malformed", "its file is damaged"),
    26: ("not a database", "its file is not a database"),
    14: ("unable to open", "its file cannot be opened"),
    5: ("locked", "another process holds it locked"),
}


class StoreError(Exception):
    """The job database failed under a read or write; the message is fit for any caller."""

    def __init__(self, cause: sqlite3.Error) -> None:
        code = getattr(cause, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary is None:
            primary = next((c for c, (text, _) in REASONS.items() if text in str(cause)), None)
        self.full = primary == SQLITE_FULL
        self.reason = REASONS[primary][1] if primary in REASONS else "it failed"
        if isinstance(cause, sqlite3.ProgrammingError):
            self.reason = "it is closed (the server is stopping)"
        super().__init__(f"the job store cannot be used: {self.reason}")


@contextmanager
def _plain_errors(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError:
        raise  # a bug, not the database failing
    except sqlite3.Error as exc:
        log.error("job store %s failed: %s: %s", what, type(exc).__name__, exc)
        raise StoreError(exc) from exc


@dataclass(frozen=True)
class ItemPlan:
    """One item as planned at submission: where it reads and writes (paths as given)."""

    frame: int
    input: str
    output: str


@dataclass(frozen=True)
class Item:
    job_id: str
    index: int
    frame: int
    input: str
    output: str
    state: ItemState
    error: str
    attempts: int
    seq: int


@dataclass(frozen=True)
class Job:
    id: str
    idempotency_key: str | None
    spec: dict[str, Any]
    state: JobState
    executor: str
    created: float
    updated: float
    cancel_requested: bool
    total: int
    done: int
    failed: int
    skipped: int
    message: str = ""  # why it is paused (never stored: the executor's view)


class JobStore:
    """Thread-safe access to the job database (one connection, serialised by a lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        with _plain_errors("open"):
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def journal_mode(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def cap_size(self, max_bytes: int | None) -> int:
        """Let the database grow to about ``max_bytes`` (None: no cap); returns the cap in bytes.

        Past it writes fail as on a full disk. The cap is never below the current size.
        """
        with self._lock, _plain_errors("cap"):
            page = int(self._db.execute("PRAGMA page_size").fetchone()[0])
            pages = max(1, max_bytes // page) if max_bytes is not None else 2**30 - 1
            return page * int(self._db.execute(f"PRAGMA max_page_count = {int(pages)}").fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _plain_errors("write"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back (a full disk, an I/O error).
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.exception("job store rollback failed")
                raise

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _plain_errors("read"):
            yield self._db

    # -- writing -----------------------------------------------------------------------------

    def create(
        self,
        spec: dict[str, Any],
        items: Sequence[ItemPlan],
        executor: str,
        idempotency_key: str | None = None,
    ) -> tuple[Job, bool]:
        """Insert a queued job with its items; (job, created). A known key returns its job."""
        with self._transaction() as db:
            if idempotency_key:
                row = db.execute(
                    "SELECT id FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
                if row:
                    found = self._job(db, row[0])
                    assert found is not None
                    return found, False
            job_id = uuid.uuid4().hex[:16]
            now = time.time()
            db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    job_id,
                    idempotency_key or None,
                    json.dumps(spec, sort_keys=True),
                    int(JobState.QUEUED),
                    executor,
                    now,
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO items (job_id, idx, frame, input, output, state) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (job_id, i, p.frame, p.input, p.output, int(ItemState.PENDING))
                    for i, p in enumerate(items)
                ],
            )
            job = self._job(db, job_id)
        assert job is not None
        return job, True

    def set_state(self, job_id: str, state: JobState, only_from: Sequence[JobState] = ()) -> bool:
        """Move a job to ``state`` (only from one of ``only_from`` when given); True if it moved."""
        with self._transaction() as db:
            query = "UPDATE jobs SET state = ?, updated = ? WHERE id = ?"
            args: list[Any] = [int(state), time.time(), job_id]
            if only_from:
                query += f" AND state IN ({','.join('?' * len(only_from))})"
                args += [int(s) for s in only_from]
            return db.execute(query, args).rowcount == 1

    def request_cancel(self, job_id: str) -> bool:
        """Record that the job is to stop (kept across restarts); False if it had already finished."""
        finished = [int(s) for s in JobState if s.finished]
        marks = ",".join("?" * len(finished))
        query = f"UPDATE jobs SET cancel_requested = 1, updated = ? WHERE id = ? AND state NOT IN ({marks})"
        with self._transaction() as db:
            return db.execute(query, (time.time(), job_id, *finished)).rowcount == 1

    def finish_item(self, job_id: str, index: int, state: ItemState, error: str = "") -> bool:
        """Record an item's outcome once: False when it was no longer pending (nothing changes)."""
        error = error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"
        with self._transaction() as db:
            changed = (
                db.execute(
                    "UPDATE items SET state = ?, error = ?, attempts = attempts + 1, "
                    "seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM items) "
                    "WHERE job_id = ? AND idx = ? AND state = ?",
                    (int(state), error, job_id, index, int(ItemState.PENDING)),
                ).rowcount
                == 1
            )
            if changed:
                db.execute("UPDATE jobs SET updated = ? WHERE id = ?", (time.time(), job_id))
            return changed

    def skip_pending(self, job_id: str) -> int:
        """Mark every still-pending item skipped (after a cancel); how many."""
        with self._transaction() as db:
            pending = [
                r[0]
                for r in db.execute(
                    "SELECT idx FROM items WHERE job_id = ? AND state = ? ORDER BY idx",
                    (job_id, int(ItemState.PENDING)),
                )
            ]
            for index in pending:
                db.execute(
                    "UPDATE items SET state = ?, seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM items) "
                    "WHERE job_id = ? AND idx = ?",
                    (int(ItemState.SKIPPED), job_id, index),
                )
            return len(pending)

    def delete(self, job_id: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount == 1

    # -- reading -----------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._reading() as db:
            return self._job(db, job_id)

    def state(self, job_id: str) -> JobState | None:
        """Only the job's state: one row, however many items it has (for pollers)."""
        with self._reading() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else JobState(row[0])

    def snapshot(self, job_id: str) -> tuple[Job, int] | None:
        """The job and the newest ``seq`` of its items, read together (no change falls between)."""
        with self._reading() as db:
            job = self._job(db, job_id)
            if job is None:
                return None
            row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM items WHERE job_id = ?", (job_id,)).fetchone()
            return job, int(row[0])

    def jobs(self, states: Sequence[JobState] = (), offset: int = 0, limit: int = -1) -> list[Job]:
        """Jobs (optionally in some states), oldest first; ``limit`` of them from ``offset``."""
        with self._reading() as db:
            query, args = "SELECT id FROM jobs", []
            if states:
                query += f" WHERE state IN ({','.join('?' * len(states))})"
                args = [int(s) for s in states]
            query += " ORDER BY created, id LIMIT ? OFFSET ?"
            ids = [r[0] for r in db.execute(query, [*args, limit, offset])]
            return [j for j in (self._job(db, i) for i in ids) if j is not None]

    def items(
        self,
        job_id: str,
        states: Sequence[ItemState] = (),
        after_seq: int = -1,
        from_index: int = 0,
        limit: int = -1,
    ) -> list[Item]:
        """A job's items in index order from ``from_index`` (optionally in some states), or
        those changed after ``after_seq`` in commit order; at most ``limit`` of them."""
        with self._reading() as db:
            query = "SELECT * FROM items WHERE job_id = ? AND seq > ? AND idx >= ?"
            args: list[Any] = [job_id, after_seq, from_index]
            if states:
                query += f" AND state IN ({','.join('?' * len(states))})"
                args += [int(s) for s in states]
            order = " ORDER BY seq" if after_seq >= 0 else " ORDER BY idx"
            return [self._item(r) for r in db.execute(query + order + " LIMIT ?", [*args, limit])]

    @staticmethod
    def _item(row: sqlite3.Row | tuple[Any, ...]) -> Item:
        job_id, idx, frame, input_path, output, state, error, attempts, seq = row
        return Item(job_id, idx, frame, input_path, output, ItemState(state), error, attempts, seq)

    @staticmethod
    def _job(db: sqlite3.Connection, job_id: str) -> Job | None:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        counts = dict(
            db.execute(
                "SELECT state, COUNT(*) FROM items WHERE job_id = ? GROUP BY state", (job_id,)
            ).fetchall()
        )
        job_id, key, spec, state, executor, created, updated, cancel = row
        return Job(
            job_id,
            key,
            json.loads(spec),
            JobState(state),
            executor,
            created,
            updated,
            bool(cancel),
            total=sum(counts.values()),
            done=counts.get(int(ItemState.DONE), 0),
            failed=counts.get(int(ItemState.FAILED), 0),
            skipped=counts.get(int(ItemState.SKIPPED), 0),
        )

"""Durable job records: SQLite in WAL mode, one row per job and one per item (frame).

Every state change is its own committed transaction (``synchronous=FULL``), taken after
the item's output file is in place, so a crash loses at most the items in flight, and
those are simply done again. ``seq`` numbers every item change in commit order, which
is how watchers and the executors on other machines see progress without callbacks.

Every job has an owner, the API key that submitted it (see :mod:`museforge.jobs.owners`); a
read given an owner sees only that owner's jobs, and idempotency keys are unique per owner.

A database that fails (its disk full, an I/O error, made read-only) raises StoreError
(see :mod:`museforge.jobs.database`, which opens and guards the connection).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from .database import Database, OnDatabase
from .database import StoreError as StoreError
from .schema import prepare


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


MAX_ERROR_CHARS = 1000  # an item's error: listed with every page of items


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
    owner: str  # the submitting API key's id; '' for none (no auth, or a job from before owners)
    total: int
    done: int
    failed: int
    skipped: int
    message: str = ""  # why it is paused (never stored: the executor's view)


class JobStore(OnDatabase):
    """Thread-safe access to the job database (writes serialised on one connection, reads on
    another, each a snapshot: see :class:`Database`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._database = Database(path, "", "job store")
        try:
            prepare(self._database)
        except BaseException:  # a refused database is not left open behind the error
            self._database.close()
            raise
        self._transaction = self._database.transaction
        self._reading = self._database.reading

    # -- writing -----------------------------------------------------------------------------

    def create(
        self,
        spec: dict[str, Any],
        items: Sequence[ItemPlan],
        executor: str,
        idempotency_key: str | None = None,
        owner: str = "",
    ) -> tuple[Job, bool]:
        """Insert a queued job of ``owner`` with its items; (job, created). A key the owner
        already gave returns that job (another owner's same key is another job)."""
        with self._transaction() as db:
            if idempotency_key:
                row = db.execute(
                    "SELECT id FROM jobs WHERE owner = ? AND idempotency_key = ?", (owner, idempotency_key)
                ).fetchone()
                if row:
                    found = self._job(db, row[0])
                    assert found is not None
                    return found, False
            job_id = uuid.uuid4().hex[:16]
            now = time.time()
            db.execute(
                "INSERT INTO jobs (id, idempotency_key, spec, state, executor, created, updated, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    idempotency_key or None,
                    json.dumps(spec, sort_keys=True),
                    int(JobState.QUEUED),
                    executor,
                    now,
                    now,
                    owner,
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

    def retry(
        self, job_id: str, states: Sequence[ItemState], also: Sequence[int] = ()
    ) -> tuple[JobState, int] | None:
        """Put a finished job's items in ``states`` (and, if there are any, those at the indices
        ``also``) back to pending and the job back to QUEUED, in one transaction; (its state before,
        how many items). A job not finished, or with no such item, stays as it is (0 items); None:
        no such job."""
        with self._transaction() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            state = JobState(row[0])
            if not state.finished:
                return state, 0
            marks = ",".join("?" * len(states))
            indices = [r[0] for r in db.execute(
                f"SELECT idx FROM items WHERE job_id = ? AND state IN ({marks})",
                (job_id, *(int(s) for s in states)))]
            chosen = sorted(set(indices) | set(also)) if indices else []
            for index in chosen:  # each its own seq, as every item change has: watchers see it
                db.execute(
                    "UPDATE items SET state = ?, error = '', "
                    "seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM items) WHERE job_id = ? AND idx = ?",
                    (int(ItemState.PENDING), job_id, index),
                )
            if chosen:  # the cancel it may have had is over: a new one must be able to stop it
                db.execute("UPDATE jobs SET state = ?, cancel_requested = 0, updated = ? WHERE id = ?",
                           (int(JobState.QUEUED), time.time(), job_id))
            return state, len(chosen)

    def delete(self, job_id: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount == 1

    # -- reading -----------------------------------------------------------------------------

    # ``owner`` (None: any) keeps a read to one owner's jobs: another's is as if it were not there.

    def get(self, job_id: str, owner: str | None = None) -> Job | None:
        with self._reading() as db:
            return self._job(db, job_id, owner)

    def state(self, job_id: str, owner: str | None = None) -> JobState | None:
        """Only the job's state: one row, however many items it has (for pollers)."""
        with self._reading() as db:
            row = db.execute("SELECT state, owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None or owner not in (None, row[1]) else JobState(row[0])

    def snapshot(self, job_id: str, owner: str | None = None) -> tuple[Job, int] | None:
        """The job and the newest ``seq`` of its items, read together (no change falls between)."""
        with self._reading() as db:
            job = self._job(db, job_id, owner)
            if job is None:
                return None
            row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM items WHERE job_id = ?", (job_id,)).fetchone()
            return job, int(row[0])

    def jobs(self, states: Sequence[JobState] = (), offset: int = 0, limit: int = -1,
             after: tuple[float, str] | None = None, owner: str | None = None) -> list[Job]:
        """Jobs (optionally in some states, of one owner), oldest first; ``limit`` of them from
        ``offset``, after the job created at ``after`` (created, id) when given, wherever it now stands."""
        with self._reading() as db:
            conditions: list[str] = []
            args: list[Any] = []
            if owner is not None:
                conditions.append("owner = ?")
                args.append(owner)
            if states:
                conditions.append(f"state IN ({','.join('?' * len(states))})")
                args += [int(s) for s in states]
            if after is not None:
                conditions.append("(created > ? OR (created = ? AND id > ?))")
                args += [after[0], after[0], after[1]]
            query = "SELECT id FROM jobs" + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
            query += " ORDER BY created, id LIMIT ? OFFSET ?"
            ids = [r[0] for r in db.execute(query, [*args, limit, offset])]
            return [j for j in (self._job(db, i, owner) for i in ids) if j is not None]

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
    def _job(db: sqlite3.Connection, job_id: str, owner: str | None = None) -> Job | None:
        row = db.execute("SELECT id, idempotency_key, spec, state, executor, created, updated, "
                         "cancel_requested, owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or owner not in (None, row[8]):
            return None
        counts = dict(
            db.execute(
                "SELECT state, COUNT(*) FROM items WHERE job_id = ? GROUP BY state", (job_id,)
            ).fetchall()
        )
        job_id, key, spec, state, executor, created, updated, cancel, job_owner = row
        return Job(
            job_id,
            key,
            json.loads(spec),
            JobState(state),
            executor,
            created,
            updated,
            bool(cancel),
            job_owner,
            total=sum(counts.values()),
            done=counts.get(int(ItemState.DONE), 0),
            failed=counts.get(int(ItemState.FAILED), 0),
            skipped=counts.get(int(ItemState.SKIPPED), 0),
        )

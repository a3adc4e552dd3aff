"""Durable feedback events: one SQLite database (WAL, durable commits) beside the job store.

An event belongs to an owner and a user. The owner is the API key's id ("" with auth
off); the user is the caller's own id for one of its users ("" for the key itself).
Every query is scoped to one owner, which is how one key never reads or deletes another
key's users. ``seq`` orders events as they were recorded and pages through them.

The schema is versioned with ``PRAGMA user_version``; a database from a newer museforge
is refused rather than misread. Deletions overwrite the deleted rows (``secure_delete``)
and checkpoint the write-ahead log (best effort: a reader in another process can keep
the log from being emptied), so a forgotten user's events do not linger in free pages.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..jobs.database import Database, OnDatabase, StoreError

__all__ = ["DATABASE_NAME", "SCHEMA_VERSION", "FeedbackStore", "NewerSchema", "OverQuota", "RequestReused",
           "StoreError", "StoredEvent"]

SCHEMA_VERSION = 4  # 2: events counted per owner (the quota reads the count, not the rows);
# 3: per owner also its newest event and how many of its events were ever deleted, so a
# recommender knows in O(1) whether its model is stale, and whether someone was forgotten;
# 4: the callers' request ids, so a retried RecordFeedback records its event once
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,      -- the API key's id; '' when the server has no auth
    user TEXT NOT NULL,       -- the caller's id for its user, '' for the key itself
    kind INTEGER NOT NULL,    -- museforge.v1.FeedbackKind
    artifact TEXT NOT NULL,   -- sha256 of the rated, kept or chosen artifact
    body TEXT NOT NULL,       -- the rest of the event as proto3 JSON (provenance, rating, candidates)
    created REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_user ON events (owner, user, seq)",
    "CREATE INDEX IF NOT EXISTS events_by_artifact ON events (artifact)",
    """CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    events INTEGER NOT NULL,               -- kept now
    last_seq INTEGER NOT NULL DEFAULT 0,   -- the newest event's seq
    deleted INTEGER NOT NULL DEFAULT 0     -- deleted ever (forgotten users), never goes down
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS requests (
    owner TEXT NOT NULL,
    request_id TEXT NOT NULL,  -- the caller's, unique per owner
    seq INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,  -- gone with its event
    PRIMARY KEY (owner, request_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS requests_by_event ON requests (seq)",
    "DROP TRIGGER IF EXISTS owner_counts_in",
    """CREATE TRIGGER owner_counts_in AFTER INSERT ON events BEGIN
    INSERT INTO owners (owner, events, last_seq) VALUES (NEW.owner, 1, NEW.seq)
    ON CONFLICT (owner) DO UPDATE SET events = events + 1, last_seq = NEW.seq;
    END""",
    "DROP TRIGGER IF EXISTS owner_counts_out",
    """CREATE TRIGGER owner_counts_out AFTER DELETE ON events BEGIN
    UPDATE owners SET events = events - 1, deleted = deleted + 1 WHERE owner = OLD.owner;
    END""",
)
# Counts for a database written before they were kept (schema 1).
RECOUNT = ("DELETE FROM owners",
           "INSERT INTO owners (owner, events, last_seq) SELECT owner, COUNT(*), MAX(seq) FROM events "
           "GROUP BY owner")
# Schema 2's owners table, before the newest event and the deletions were kept beside the count.
WIDEN_OWNERS = ("ALTER TABLE owners ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0",
                "ALTER TABLE owners ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0",
                "UPDATE owners SET last_seq = (SELECT COALESCE(MAX(seq), 0) FROM events "
                "WHERE events.owner = owners.owner)")
STORE = "feedback store"
DATABASE_NAME = "feedback.sqlite3"  # in the data directory, beside the job store


class NewerSchema(RuntimeError):
    """The database was written by a newer museforge: refused rather than misread."""


class RequestReused(Exception):
    """A request id already recorded another event of the owner; nothing was recorded."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        super().__init__(f"request_id {request_id!r} already recorded another event")


class OverQuota(Exception):
    """The owner already keeps its most events; nothing was recorded."""

    def __init__(self, owner: str, kept: int, most: int) -> None:
        self.owner, self.kept, self.most = owner, kept, most
        super().__init__(f"{owner or 'this server'} keeps {kept:,} feedback events, its most ({most:,})")


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    id: str
    owner: str
    user: str
    kind: int
    artifact: str
    body: dict[str, Any]
    created: float


class FeedbackStore(OnDatabase):
    """Thread-safe access to the feedback database; call it from worker threads, never the loop."""

    def __init__(self, path: Path, busy_seconds: float = 10.0) -> None:
        self.path = path
        self._database = Database(path, "", STORE, busy_seconds)
        try:
            self._prepare()
        except BaseException:  # a refused database is not left open behind the error
            self._database.close()
            raise

    def _prepare(self) -> None:
        with self._database.transaction() as db:
            found = int(db.execute("PRAGMA user_version").fetchone()[0])
            if found > SCHEMA_VERSION:
                raise NewerSchema(
                    f"{self.path.name} has feedback schema version {found}; this museforge knows "
                    f"{SCHEMA_VERSION}: upgrade museforge to use it"
                )
            if found == 2:  # the owners table is there, narrower; the new triggers need its columns
                for statement in WIDEN_OWNERS:
                    db.execute(statement)
            for statement in SCHEMA:  # one transaction with the version: all of it or none
                db.execute(statement)
            if found < 2:
                for statement in RECOUNT:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        with self._database.writer() as db:
            db.execute("PRAGMA secure_delete = ON")  # deleted events are overwritten, not left in free pages

    def record(self, owner: str, user: str, kind: int, artifact: str, body: dict[str, Any],
               most: int = 0, request_id: str = "") -> StoredEvent:
        """Store one event (committed durably before this returns) and return it.

        ``most``: events the owner may keep (0: no limit); at it, OverQuota and nothing stored.
        ``request_id``: the caller's; when it already recorded this very event, that event is
        returned and nothing stored, when another, RequestReused.
        """
        event_id = uuid.uuid4().hex[:20]
        now = time.time()
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        with self._database.transaction() as db:
            if request_id:
                row = db.execute("SELECT e.* FROM requests r JOIN events e ON e.seq = r.seq "
                                 "WHERE r.owner = ? AND r.request_id = ?", (owner, request_id)).fetchone()
                if row is not None:
                    earlier = _event(row)
                    if (earlier.user, earlier.kind, earlier.artifact, earlier.body) != (user, kind, artifact,
                                                                                       json.loads(text)):
                        raise RequestReused(request_id)
                    return earlier
            if most:
                kept = self._kept(db, owner)
                if kept >= most:
                    raise OverQuota(owner, kept, most)
            cursor = db.execute(
                "INSERT INTO events (id, owner, user, kind, artifact, body, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event_id, owner, user, kind, artifact, text, now),
            )
            seq = int(cursor.lastrowid or 0)
            if request_id:
                db.execute("INSERT INTO requests (owner, request_id, seq) VALUES (?, ?, ?)",
                           (owner, request_id, seq))
        return StoredEvent(seq, event_id, owner, user, kind, artifact, body, now)

    def events(self, owner: str, user: str | None, after_seq: int = 0, limit: int = -1) -> list[StoredEvent]:
        """The owner's events of ``user`` (None: of all its users), oldest first, after ``after_seq``."""
        query = "SELECT * FROM events WHERE owner = ? AND seq > ?"
        args: list[Any] = [owner, after_seq]
        if user is not None:
            query += " AND user = ?"
            args.append(user)
        with self._database.reading() as db:
            rows = db.execute(query + " ORDER BY seq LIMIT ?", [*args, limit]).fetchall()
        return [_event(row) for row in rows]

    def seq_of(self, owner: str, user: str, event_id: str) -> int | None:
        """The seq of the owner's user's event ``event_id``; None when it is not (or no longer) there."""
        with self._database.reading() as db:
            row = db.execute("SELECT seq FROM events WHERE id = ? AND owner = ? AND user = ?",
                             (event_id, owner, user)).fetchone()
        return None if row is None else int(row[0])

    def lister_of(self, owner: str, event_id: str) -> str | None:
        """The user of the owner's event ``event_id`` (whose listing it is in); None when the owner
        keeps no such event. Another owner's events are never looked at."""
        with self._database.reading() as db:
            row = db.execute("SELECT user FROM events WHERE id = ? AND owner = ?",
                             (event_id, owner)).fetchone()
        return None if row is None else str(row[0])

    def newest(self, owner: str, user: str, limit: int) -> list[StoredEvent]:
        """The user's ``limit`` newest events, oldest of them first."""
        with self._database.reading() as db:
            rows = db.execute("SELECT * FROM events WHERE owner = ? AND user = ? ORDER BY seq DESC LIMIT ?",
                              (owner, user, limit)).fetchall()
        return [_event(row) for row in reversed(rows)]

    def kept(self, owner: str) -> int:
        """How many events the owner keeps over all its users."""
        with self._database.reading() as db:
            return self._kept(db, owner)

    def user_kept(self, owner: str, user: str) -> int:
        """How many events the owner keeps of one of its users."""
        with self._database.reading() as db:
            row = db.execute("SELECT COUNT(*) FROM events WHERE owner = ? AND user = ?",
                             (owner, user)).fetchone()
        return int(row[0])

    @staticmethod
    def _kept(db: Any, owner: str) -> int:
        row = db.execute("SELECT events FROM owners WHERE owner = ?", (owner,)).fetchone()
        return int(row[0]) if row else 0

    def version(self, owner: str) -> tuple[int, int, int]:
        """(events the owner keeps, its newest event's seq, how many of its events were ever
        deleted): changes whenever the owner's events do; a recommender compares it with what
        its model was fitted on. One row read."""
        with self._database.reading() as db:
            row = db.execute("SELECT events, last_seq, deleted FROM owners WHERE owner = ?",
                             (owner,)).fetchone()
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    def has_user(self, owner: str, user: str) -> bool:
        with self._database.reading() as db:
            row = db.execute(
                "SELECT 1 FROM events WHERE owner = ? AND user = ? LIMIT 1", (owner, user)
            ).fetchone()
        return row is not None

    def users(self, owner: str) -> list[str]:
        """The owner's users that have events, in order of their first event."""
        with self._database.reading() as db:
            rows = db.execute(
                "SELECT user FROM events WHERE owner = ? GROUP BY user ORDER BY MIN(seq)", (owner,)
            ).fetchall()
        return [row[0] for row in rows]

    def forget(self, owner: str, user: str) -> int:
        """Delete every event of the owner's ``user``; how many there were."""
        with self._database.transaction() as db:
            deleted = db.execute("DELETE FROM events WHERE owner = ? AND user = ?", (owner, user)).rowcount
        if deleted:
            self._checkpoint()
        return int(deleted)

    def forget_owner(self, owner: str) -> tuple[int, int]:
        """Delete every event kept under ``owner`` (a revoked key's); (events, users) deleted."""
        with self._database.transaction() as db:
            users = int(db.execute("SELECT COUNT(DISTINCT user) FROM events WHERE owner = ?",
                                   (owner,)).fetchone()[0])
            # The owner's row stays (kept 0, its deletions counted by the trigger): removing it would
            # read as (0, 0, 0), which a model fitted before any deletion also has, and a running
            # server would go on answering from the deleted events.
            deleted = db.execute("DELETE FROM events WHERE owner = ?", (owner,)).rowcount
        if deleted:
            self._checkpoint()
        return int(deleted), users

    def _checkpoint(self) -> None:
        """Copy the log into the database and empty it, so deleted rows leave the log too.

        Best effort: a reader in another process may hold the log; the next checkpoint
        (SQLite makes them as the log grows) finishes the job.
        """
        try:
            with self._database.writer() as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except StoreError:
            pass


def _event(row: Sequence[Any]) -> StoredEvent:
    seq, event_id, owner, user, kind, artifact, body, created = row
    return StoredEvent(int(seq), event_id, owner, user, int(kind), artifact, json.loads(body), float(created))


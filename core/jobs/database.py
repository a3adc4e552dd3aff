"""One SQLite database as museforge's stores keep it: WAL, durable commits, plain-worded failures.

Every write is its own ``BEGIN IMMEDIATE`` transaction committed with ``synchronous=FULL``,
so what a call reported as done is on disk when it returns, and a crash loses nothing
acknowledged. Writes share one connection, serialised by a lock; reads share a second
one, each read a snapshot of its own, so a read never waits behind a write (this process's
or another's lock: WAL readers do not take it). Callers run the store's methods in worker
threads, never on the event loop.

A database that fails (its disk full, an I/O error, made read-only) raises StoreError,
which says so in plain words: SQLite's own text (and the file's path) stays in the log.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("museforge.jobs")

# SQLite's primary result codes (the low byte of an extended one): the text Python < 3.11
# gives instead, and what it means in plain words.
SQLITE_FULL = 13
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
    """A store's database failed under a read or write; the message is fit for any caller."""

    def __init__(self, cause: sqlite3.Error, store: str = "job store") -> None:
        code = getattr(cause, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary is None:
            primary = next((c for c, (text, _) in REASONS.items() if text in str(cause)), None)
        self.full = primary == SQLITE_FULL
        self.reason = REASONS[primary][1] if primary in REASONS else "it failed"
        if isinstance(cause, sqlite3.ProgrammingError):
            self.reason = "it is closed (the server is stopping)"
        super().__init__(f"the {store} cannot be used: {self.reason}")


@contextmanager
def plain_errors(what: str, store: str = "job store") -> Iterator[None]:
    """SQLite's errors as StoreError (an IntegrityError is a bug, and stays what it is)."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except sqlite3.Error as exc:
        log.error("%s %s failed: %s: %s", store, what, type(exc).__name__, exc)
        raise StoreError(exc, store) from exc


def _create_owner_only(path: Path) -> None:
    """Make a new database file owner-only before SQLite opens it (its log files take the same
    mode): what users rated and which frames jobs read are nobody else's, as the keys file is not.

    Only a file that is not there yet: closing a descriptor of a file this process already has
    open in SQLite would drop that connection's locks (POSIX locks are per process), and another
    process could then checkpoint and delete the log under it."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:  # said as SQLite's own failure to open would be
        raise sqlite3.OperationalError(f"unable to open database file {path}: {exc.strerror}") from exc


class Database:
    """One connection to ``path`` in WAL mode with durable commits, its schema created if missing.

    ``busy_seconds`` is how long a write waits for another process's lock before it fails.
    """

    def __init__(self, path: Path, schema: str, store: str, busy_seconds: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with plain_errors("open", store):
            _create_owner_only(path)
        self.path, self.store = path, store
        self.lock = threading.RLock()
        deadline = time.monotonic() + busy_seconds
        with plain_errors("open", store):
            self.connection = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=busy_seconds
            )
            while True:
                try:
                    self._prepare(schema)
                    break
                except sqlite3.OperationalError as exc:
                    # Processes opening one new file at once (the workers of `serve --workers N`)
                    # race to switch it to WAL; SQLite answers "locked" at once, without waiting
                    # on its busy timeout, so the loser waits here and tries again.
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        self.connection.close()
                        raise
                    time.sleep(0.02)
            self.read_lock = threading.Lock()
            try:
                self.reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                              timeout=busy_seconds)
                self.reader.execute("PRAGMA query_only=ON")
            except BaseException:
                self.connection.close()
                raise

    def _prepare(self, schema: str) -> None:
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.connection.executescript(schema)

    def close(self) -> None:
        with self.lock, self.read_lock:
            self.reader.close()
            self.connection.close()

    @property
    def journal_mode(self) -> str:
        with self.lock:
            return str(self.connection.execute("PRAGMA journal_mode").fetchone()[0])

    def cap_size(self, max_bytes: int | None) -> int:
        """Let the database grow to about ``max_bytes`` (None: no cap); returns the cap in bytes.

        Past it writes fail as on a full disk. The cap is never below the current size.
        """
        with self.lock, plain_errors("cap", self.store):
            db = self.connection
            page = int(db.execute("PRAGMA page_size").fetchone()[0])
            pages = max(1, max_bytes // page) if max_bytes is not None else 2**30 - 1
            return page * int(db.execute(f"PRAGMA max_page_count = {int(pages)}").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock, plain_errors("write", self.store):
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
                self.connection.execute("COMMIT")
            except BaseException:
                # SQLite may already have rolled back (a full disk, an I/O error).
                if self.connection.in_transaction:
                    try:
                        self.connection.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.exception("%s rollback failed", self.store)
                raise

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The reading connection, in a read transaction: what it reads is one snapshot."""
        with self.read_lock, plain_errors("read", self.store):
            self.reader.execute("BEGIN")
            try:
                yield self.reader
            finally:
                if self.reader.in_transaction:
                    self.reader.execute("ROLLBACK")  # nothing was written: this only ends the snapshot

    @contextmanager
    def writer(self) -> Iterator[sqlite3.Connection]:
        """The writing connection outside a transaction (its own settings, checkpoints)."""
        with self.lock, plain_errors("write", self.store):
            yield self.connection


class OnDatabase:
    """What every store kept in one Database offers besides its own calls."""

    _database: Database

    def close(self) -> None:
        self._database.close()

    @property
    def journal_mode(self) -> str:
        return self._database.journal_mode

    def cap_size(self, max_bytes: int | None) -> int:
        """Let the database grow to about ``max_bytes`` (None: no cap); returns the cap in bytes.

        Past it writes fail as on a full disk. The cap is never below the current size.
        """
        return self._database.cap_size(max_bytes)


"""The job database's tables, versioned with ``PRAGMA user_version``, and the move from older ones.

- 0: the first (no owners; an idempotency key unique across the server).
- 1: each job's ``owner``, the id of the API key that submitted it ('' for none: the server had
  no auth, or the job is from before owners were kept), and idempotency keys unique per owner.
  Jobs carried over from version 0 get no owner: an admin key, or a server without auth, sees
  them; no other key does, since which key submitted them was never recorded.

A database written by a newer museforge is refused rather than misread.
"""

from __future__ import annotations

import sqlite3

from ..server.unsafe_setup import UnsafeSetup
from .database import Database

SCHEMA_VERSION = 1
JOBS = """CREATE TABLE IF NOT EXISTS {name} (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT,
    spec TEXT NOT NULL,            -- the JobSpec as JSON (json_format), seed included
    state INTEGER NOT NULL,
    executor TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,  -- durable: a restart still cancels
    owner TEXT NOT NULL DEFAULT '',  -- the submitting API key's id; '' for none
    UNIQUE (owner, idempotency_key)  -- NULL keys (none given) never collide
)"""
TABLES = (
    JOBS.format(name="jobs"),
    """CREATE TABLE IF NOT EXISTS items (
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
    )""",
    "CREATE INDEX IF NOT EXISTS items_by_seq ON items (job_id, seq)",
    "CREATE INDEX IF NOT EXISTS items_seq ON items (seq)",  # MAX(seq) on every commit stays a lookup
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created)",
    "CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created, id)",
)
# Version 0's jobs table held the idempotency key UNIQUE on its own, which SQLite cannot drop
# in place: the table is copied into one of the new shape (SQLite's documented way to change
# a table; foreign keys off meanwhile, so dropping the old one does not cascade to the items).
TO_OWNERS = (
    JOBS.format(name="jobs_with_owners"),
    "INSERT INTO jobs_with_owners SELECT id, idempotency_key, spec, state, executor, created, updated, "
    "cancel_requested, '' FROM jobs",
    "DROP TABLE jobs",
    "ALTER TABLE jobs_with_owners RENAME TO jobs",
)


def prepare(database: Database) -> None:
    """Create the tables, or bring an older database's up to SCHEMA_VERSION (all of it or none)."""
    with database.writer() as db:
        db.execute("PRAGMA foreign_keys=OFF")  # only outside a transaction does this take effect
        try:
            with database.transaction():
                _migrate(db, database)
            problems = db.execute("PRAGMA foreign_key_check").fetchall()
            if problems:  # cannot happen from a copy of every row; said rather than served wrong
                raise sqlite3.IntegrityError(f"{database.path}: items without their job after the move")
        finally:
            db.execute("PRAGMA foreign_keys=ON")


def _migrate(db: sqlite3.Connection, database: Database) -> None:
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise UnsafeSetup(f"{database.path} has job schema version {found}; this museforge knows "
                          f"{SCHEMA_VERSION}: upgrade museforge to use it")
    has_jobs = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
    if has_jobs and found < 1:
        for statement in TO_OWNERS:
            db.execute(statement)
    for statement in TABLES:
        db.execute(statement)
    if found < SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

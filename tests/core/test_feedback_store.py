"""The feedback store on a real SQLite file: durable, versioned, scoped, and forgetting for good."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import threading
from pathlib import Path
from typing import cast

import pytest

from museforge.config import Settings
from museforge.engine.catalogue import Engine
from museforge.feedback import store as store_module
from museforge.feedback.store import SCHEMA_VERSION, FeedbackStore, NewerSchema
from museforge.jobs.database import Database, StoreError
from museforge.jobs.store import JobStore
from museforge.server.app import FEEDBACK_DB, JOBS_DB, start_feedback, start_server
from museforge.server.feedback_service import page_of
from museforge.server.unsafe_setup import UnsafeSetup

SHA = "ab" * 32


def test_events_are_scoped_to_their_owner_and_come_back_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    assert store.journal_mode == "wal"
    first = store.record("key1", "ann", 2, SHA, {"stars": 4})
    store.record("key1", "", 4, SHA, {})
    store.record("key2", "ann", 4, SHA, {})
    store.close()
    reopened = FeedbackStore(path)
    assert reopened.events("key1", "ann") == [first]
    assert [e.user for e in reopened.events("key1", None)] == ["ann", ""]
    assert reopened.users("key1") == ["ann", ""] and reopened.users("key2") == ["ann"]
    assert not reopened.has_user("key3", "ann")
    assert reopened.forget("key2", "ann") == 1 and reopened.events("key1", "ann") == [first]


def test_a_database_from_a_newer_museforge_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    FeedbackStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(NewerSchema, match="upgrade museforge"):
        FeedbackStore(path)


def test_the_server_will_not_start_on_a_newer_feedback_database(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / FEEDBACK_DB) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UnsafeSetup, match=r"cannot open the feedback database .* upgrade museforge"):
        start_feedback(Settings(address="127.0.0.1:0", data_dir=str(tmp_path)), cast(Engine, None))
    # A whole start: refused before any job is resumed, so no job executor or job store is left.
    before = set(threading.enumerate())
    settings = Settings(address="127.0.0.1:0", data_dir=str(tmp_path), plugins=[])
    with pytest.raises(UnsafeSetup, match="upgrade museforge"):
        asyncio.run(start_server(settings))
    assert not (tmp_path / JOBS_DB).exists()
    assert not [t.name for t in set(threading.enumerate()) - before if t.name == "museforge-jobs"]


def test_a_start_failing_after_the_stores_opened_closes_them(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # A taken port is refused before the stores open; a port taken between that check and the
    # bind (another program's race) is the failure after them that this is about.
    monkeypatch.setattr("museforge.server.app.refuse_taken_ports", lambda *_: None)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    before = set(threading.enumerate())
    settings = Settings(address=f"127.0.0.1:{taken.getsockname()[1]}", data_dir=str(tmp_path), plugins=[])
    try:
        with pytest.raises((OSError, RuntimeError)):
            asyncio.run(start_server(settings))
    finally:
        taken.close()
    assert (tmp_path / JOBS_DB).exists() and (tmp_path / FEEDBACK_DB).exists()  # both were opened
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()
                and t.name.startswith(("museforge-jobs", "museforge-feedback"))]
    FeedbackStore(tmp_path / FEEDBACK_DB).close()  # and can be opened again


def test_a_refused_database_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Database] = []

    class Recorded(Database):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    path = tmp_path / "feedback.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    monkeypatch.setattr(store_module, "Database", Recorded)
    with pytest.raises(NewerSchema):
        FeedbackStore(path)
    [database] = opened
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        database.connection.execute("SELECT 1")


def test_a_page_is_cut_by_bytes_and_always_holds_one_event(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    ids = [store.record("key1", "ann", 4, SHA, {"artifact": {"sha256": SHA, "model_version": str(i)}}).id
           for i in range(250)]  # more than one read of rows per page

    def pages(size: int, max_bytes: int) -> list[list[str]]:
        found, after = [], 0
        while True:
            page, more = page_of(store, "key1", "ann", after, size, max_bytes)
            found.append([e.id for e in page])
            if more is None:
                return found
            after = more

    assert [len(p) for p in pages(1000, 1 << 20)] == [250]
    assert [len(p) for p in pages(100, 1 << 20)] == [100, 100, 50]
    assert [len(p) for p in pages(120, 1 << 20)] == [120, 120, 10]
    assert [len(p) for p in pages(250, 1 << 20)] == [250]  # an exact fit: no empty last page
    one = pages(1000, 1)  # every event is over the budget: one a page, none lost
    assert [len(p) for p in one] == [1] * 250 and [i for p in one for i in p] == ids
    cut = pages(1000, 40 * 200)
    assert len(cut) > 1 and [i for p in cut for i in p] == ids
    store.close()


def test_a_forgotten_user_leaves_no_trace_in_the_files(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    marker = "forget-me-zq81"
    for _ in range(20):
        store.record("key1", marker, 4, SHA, {"note": marker})
    store.record("key1", "stays", 4, SHA, {})
    assert store.forget("key1", marker) == 20
    files = [path, path.with_name(path.name + "-wal")]
    assert not any(marker.encode() in f.read_bytes() for f in files if f.exists())
    assert [e.user for e in store.events("key1", None)] == ["stays"]


def test_a_full_database_fails_in_plain_words(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    store.cap_size(0)
    with pytest.raises(StoreError) as caught:
        for _ in range(200):
            store.record("key1", "ann", 4, SHA, {"padding": "x" * 2000})
    assert caught.value.full and str(caught.value) == "the feedback store cannot be used: its disk is full"


def test_events_are_counted_per_owner_and_the_quota_stores_nothing_past_it(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    for user in ("ann", "bob", "ann"):
        store.record("key1", user, 4, SHA, {}, most=3)
    store.record("key2", "ann", 4, SHA, {}, most=3)
    with pytest.raises(store_module.OverQuota) as caught:
        store.record("key1", "cid", 4, SHA, {}, most=3)
    assert (caught.value.kept, caught.value.most) == (3, 3) and not store.has_user("key1", "cid")
    assert store.forget("key1", "ann") == 2 and store.kept("key1") == 1
    store.record("key1", "cid", 4, SHA, {}, most=3)
    assert store.forget_owner("key1") == (2, 2)
    assert store.kept("key1") == 0 and store.events("key1", None) == []
    assert store.kept("key2") == 1 and len(store.events("key2", None)) == 1


def test_a_database_of_schema_1_gets_its_counts_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    for owner in ("key1", "key1", "key2"):
        store.record(owner, "ann", 4, SHA, {})
    store.close()
    with sqlite3.connect(path) as db:  # as the first release left it: no counts kept
        db.executescript("DROP TRIGGER owner_counts_in; DROP TRIGGER owner_counts_out; DROP TABLE owners; "
                         "PRAGMA user_version = 1;")
    upgraded = FeedbackStore(path)
    assert (upgraded.kept("key1"), upgraded.kept("key2")) == (2, 1)
    upgraded.record("key2", "bob", 4, SHA, {})
    assert upgraded.kept("key2") == 2
    assert upgraded.version("key2") == (2, 4, 0)
    upgraded.close()


def test_a_database_of_schema_2_learns_each_owners_newest_event_and_deletions(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    for owner in ("key1", "key2", "key1"):
        store.record(owner, "ann", 4, SHA, {})
    store.close()
    with sqlite3.connect(path) as db:  # as schema 2 left it: counts only, its triggers
        db.executescript(
            "DROP TRIGGER owner_counts_in; DROP TRIGGER owner_counts_out; DROP TABLE owners;"
            "CREATE TABLE owners (owner TEXT PRIMARY KEY, events INTEGER NOT NULL) WITHOUT ROWID;"
            "INSERT INTO owners VALUES ('key1', 2), ('key2', 1);"
            "CREATE TRIGGER owner_counts_in AFTER INSERT ON events BEGIN INSERT INTO owners (owner, events)"
            " VALUES (NEW.owner, 1) ON CONFLICT (owner) DO UPDATE SET events = events + 1; END;"
            "CREATE TRIGGER owner_counts_out AFTER DELETE ON events BEGIN"
            " UPDATE owners SET events = events - 1 WHERE owner = OLD.owner; END;"
            "PRAGMA user_version = 2;")
    upgraded = FeedbackStore(path)
    assert upgraded.version("key1") == (2, 3, 0) and upgraded.version("key2") == (1, 2, 0)
    upgraded.record("key1", "bob", 4, SHA, {})
    assert upgraded.version("key1") == (3, 4, 0)
    assert upgraded.forget("key1", "ann") == 2
    assert upgraded.version("key1") == (1, 4, 2)  # a forgotten user shows, whatever comes after
    upgraded.record("key1", "cy", 4, SHA, {})
    upgraded.record("key1", "cy", 4, SHA, {})
    assert upgraded.version("key1") == (3, 6, 2) and upgraded.version("nobody") == (0, 0, 0)
    upgraded.close()


def test_the_stores_are_readable_by_their_owner_alone(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask, under which a plain file is world-readable
    try:
        feedback = FeedbackStore(tmp_path / FEEDBACK_DB)
        feedback.record("", "ann", 1, "a" * 64, {})
        jobs = JobStore(tmp_path / JOBS_DB)
    finally:
        os.umask(previous)
    try:
        made = [p for p in tmp_path.iterdir() if p.name.startswith(("feedback", "jobs"))]
        assert {p.name for p in made} >= {FEEDBACK_DB, f"{FEEDBACK_DB}-wal", JOBS_DB}
        for path in made:
            assert path.stat().st_mode & 0o077 == 0, (path.name, oct(path.stat().st_mode))
    finally:
        feedback.close()
        jobs.close()


def test_a_database_of_schema_3_takes_request_ids_and_keys_keep_their_own(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    FeedbackStore(path).close()
    with sqlite3.connect(path) as db:  # as schema 3 left it: no request ids
        db.executescript("DROP TABLE requests; PRAGMA user_version = 3;")
    store = FeedbackStore(path)
    try:
        first = store.record("key1", "ann", 4, SHA, {"stars": 5}, request_id="r1")
        assert store.record("key1", "ann", 4, SHA, {"stars": 5}, request_id="r1") == first
        with pytest.raises(store_module.RequestReused):
            store.record("key1", "ann", 4, SHA, {"stars": 1}, request_id="r1")
        other = store.record("key2", "ann", 4, SHA, {"stars": 1}, request_id="r1")  # another key's r1
        assert other.id != first.id and store.kept("key1") == 1 and store.kept("key2") == 1
    finally:
        store.close()


def test_a_second_store_on_the_same_file_in_one_process_loses_no_write(tmp_path: Path) -> None:
    # Opening a store must not close a descriptor of a file this process has open in SQLite:
    # that dropped the first connection's locks, another process then deleted the log under
    # it, and a write acknowledged as durable was seen by no one else.
    import subprocess
    import sys

    path = tmp_path / FEEDBACK_DB
    load = "import sys; from pathlib import Path; from museforge.feedback.store import FeedbackStore; "
    server = FeedbackStore(path)
    try:
        server.record("", "ann", 1, "a" * 64, {"n": 1})
        other = subprocess.Popen(
            [sys.executable, "-c", load + "s = FeedbackStore(Path(sys.argv[1])); "
             "s.record('', 'bob', 1, 'b' * 64, {'n': 2}); print('ready', flush=True); sys.stdin.readline(); "
             "s.close()", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert other.stdout is not None and other.stdin is not None
        assert other.stdout.readline().strip() == "ready"
        FeedbackStore(path).close()  # another store on the file in this process (a second server)
        other.stdin.write("\n")
        other.stdin.flush()
        assert other.wait(60) == 0
        server.record("", "ann", 1, "a" * 64, {"n": 3})
        seen = subprocess.run(
            [sys.executable, "-c", load + "print([e.body['n'] for e in FeedbackStore(Path(sys.argv[1]))"
             ".events('', None)])", str(path)], capture_output=True, text=True, timeout=60)
        assert seen.stdout.strip() == "[1, 2, 3]", seen.stderr[-500:]
    finally:
        server.close()

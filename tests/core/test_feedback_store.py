"""The feedback store on a real SQLite file: durable, versioned, scoped, and forgetting for good."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import cast

import pytest

from museforge.config import Settings
from museforge.engine.catalogue import Engine
from museforge.feedback.store import SCHEMA_VERSION, FeedbackStore, NewerSchema
from museforge.jobs.database import StoreError
from museforge.server.app import FEEDBACK_DB, start_feedback
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

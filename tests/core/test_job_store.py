"""The job store on real SQLite: WAL, idempotency, items recorded once, cancel kept, cascade delete,
pages, and a full or read-only database reported in plain words."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from museforge.jobs.store import MAX_ERROR_CHARS, ItemPlan, ItemState, JobState, JobStore, StoreError

PLANS = [ItemPlan(f, f"in.{f:04d}.png", f"out.{f:04d}.png") for f in range(1001, 1006)]


def test_wal_mode_and_a_queued_job_with_its_items(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    assert store.journal_mode == "wal"
    job, created = store.create({"steps": []}, PLANS, "local")
    assert created and job.state == JobState.QUEUED and job.total == 5 and job.done == 0
    items = store.items(job.id)
    assert [i.frame for i in items] == [1001, 1002, 1003, 1004, 1005]
    assert {i.state for i in items} == {ItemState.PENDING}


def test_the_same_idempotency_key_returns_the_first_job(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    first, created = store.create({"a": 1}, PLANS, "local", "sh010-v3")
    again, created_again = store.create({"a": 2}, PLANS[:1], "local", "sh010-v3")
    other, _ = store.create({"a": 3}, PLANS, "local", "sh020-v1")
    assert created and not created_again and again.id == first.id and again.spec == {"a": 1}
    assert other.id != first.id and len(store.jobs()) == 2


def test_an_item_is_finished_once_and_counts_follow(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    job, _ = store.create({}, PLANS, "local")
    assert store.finish_item(job.id, 0, ItemState.DONE)
    assert not store.finish_item(job.id, 0, ItemState.FAILED, "late")  # no second outcome
    assert store.finish_item(job.id, 1, ItemState.FAILED, "input missing")
    assert store.skip_pending(job.id) == 3
    counted = store.get(job.id)
    assert counted is not None and (counted.done, counted.failed, counted.skipped) == (1, 1, 3)
    items = store.items(job.id)
    assert items[0].attempts == 1 and items[1].error == "input missing"
    # seq orders changes: a watcher that saw seq 1 gets the rest in commit order.
    assert [i.index for i in store.items(job.id, after_seq=items[0].seq)] == [1, 2, 3, 4]


def test_state_moves_only_from_the_allowed_states_and_cancel_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    job, _ = store.create({}, PLANS, "local")
    assert store.set_state(job.id, JobState.RUNNING, only_from=(JobState.QUEUED,))
    assert not store.set_state(job.id, JobState.RUNNING, only_from=(JobState.QUEUED,))
    assert store.request_cancel(job.id)
    store.close()
    reopened = JobStore(path)
    found = reopened.get(job.id)
    assert found is not None and found.cancel_requested and found.state == JobState.RUNNING
    reopened.set_state(job.id, JobState.CANCELLED)
    assert not reopened.request_cancel(job.id)  # finished: nothing to cancel
    assert [j.id for j in reopened.jobs([JobState.CANCELLED])] == [job.id]


def test_delete_removes_the_job_and_its_items(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    job, _ = store.create({}, PLANS, "local")
    assert store.delete(job.id) and store.get(job.id) is None and not store.delete(job.id)
    rows = sqlite3.connect(tmp_path / "jobs.sqlite3").execute("SELECT COUNT(*) FROM items").fetchone()
    assert rows == (0,)


def test_a_full_database_fails_plainly_and_takes_writes_again_with_room(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    many = [ItemPlan(f, f"in.{f:04d}.png", f"out.{f:04d}.png") for f in range(300)]
    store.cap_size(0)  # SQLite's own size cap: past it, SQLITE_FULL as on a full disk
    with pytest.raises(StoreError) as caught:
        store.create({}, many, "local")
    assert caught.value.full and str(caught.value) == "the job store cannot be used: its disk is full"
    assert store.jobs() == []  # nothing half-written
    store.cap_size(None)
    job, created = store.create({}, many, "local")
    found = store.get(job.id)
    assert created and store.state(job.id) == JobState.QUEUED and found is not None and found.total == 300


def test_a_read_only_database_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    JobStore(path).close()
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        reader.execute("DELETE FROM jobs")
    error = StoreError(caught.value)
    assert not error.full and error.reason == "it is read-only" and str(path) not in str(error)


def test_pages_of_items_and_jobs_and_a_long_error_kept_short(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite3")
    first, _ = store.create({}, PLANS, "local")
    second, _ = store.create({}, PLANS, "local")
    assert [j.id for j in store.jobs(offset=1, limit=5)] == [second.id]
    assert [i.index for i in store.items(first.id, from_index=2, limit=2)] == [2, 3]
    store.finish_item(first.id, 3, ItemState.FAILED, "x" * 5000)
    assert [i.index for i in store.items(first.id, [ItemState.FAILED], from_index=1)] == [3]
    assert len(store.items(first.id)[3].error) == MAX_ERROR_CHARS


def _open_both(directory: str, barrier: Any, results: Any) -> None:
    from museforge.feedback.store import FeedbackStore

    barrier.wait()
    try:
        JobStore(Path(directory) / "jobs.sqlite3").close()
        FeedbackStore(Path(directory) / "feedback.sqlite3").close()
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(repr(exc))


def test_processes_opening_new_databases_at_once_all_open_them(tmp_path: Path) -> None:
    # The workers of `serve --workers N` open the same new files together; before the
    # open retried SQLite's immediate "locked", about one round in four lost a process.
    context = multiprocessing.get_context("fork")
    outcomes: list[str] = []
    for round_ in range(8):
        directory = tmp_path / str(round_)
        barrier, results = context.Barrier(4), context.Queue()
        processes = [context.Process(target=_open_both, args=(str(directory), barrier, results))
                     for _ in range(4)]
        for process in processes:
            process.start()
        outcomes += [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(30)
    assert outcomes == ["ok"] * 32


def test_a_job_being_cancelled_says_so_and_is_not_told_to_cancel_first(tmp_path: Path) -> None:
    from museforge.jobs.service import deletion_refused, metadata_of

    store = JobStore(tmp_path / "jobs.sqlite3")
    job, _ = store.create({}, PLANS, "local")
    store.set_state(job.id, JobState.RUNNING)
    running = store.get(job.id)
    assert running is not None and "cancel it first" in str(deletion_refused(running))
    assert metadata_of(running).message == ""
    store.request_cancel(job.id)  # recorded at once; the executor acts at the job's next item
    cancelling = store.get(job.id)
    assert cancelling is not None and cancelling.state == JobState.RUNNING
    assert "being cancelled" in str(deletion_refused(cancelling))
    assert metadata_of(cancelling).message == "cancelling: stops at its next item"
    store.set_state(job.id, JobState.CANCELLED)
    done = store.get(job.id)
    assert done is not None and deletion_refused(done) is None and metadata_of(done).message == ""

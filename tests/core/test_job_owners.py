"""Each job belongs to the API key that submitted it, on a real server with auth on: another key
neither sees, watches, cancels, deletes nor lists it (NOT_FOUND, over gRPC and HTTP), idempotency
keys are per key, an admin key sees every job; and a job store from before owners is carried over."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from museforge.client import Client
from museforge.config import Settings
from museforge.jobs.schema import SCHEMA_VERSION
from museforge.jobs.store import ItemPlan, JobState, JobStore
from museforge.server.unsafe_setup import UnsafeSetup
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import chain_spec, job_settings, key_file, write_frames
from tests.core.test_gateway import Http
from tests.servers import ServerThread

Keys = dict[str, str]  # each key by its name


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("job-owners")
    write_frames(root / "in", 1001, 1003)
    (root / "out").mkdir()
    return root


@pytest.fixture(scope="module")
def keys(root: Path) -> tuple[Path, Keys]:
    return key_file(root, {"alice": ["generate", "jobs"], "bob": ["generate", "jobs"], "root": ["admin"]})


@pytest.fixture()
def clients(guarded: ServerThread, keys: tuple[Path, Keys]) -> Iterator[dict[str, Client]]:
    opened = {name: Client(guarded.address, timeout=60, api_key=key) for name, key in keys[1].items()}
    try:
        yield opened
    finally:
        for client in opened.values():
            client.close()


def not_found(call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value
    return str(caught.value.details())


def test_another_keys_job_is_not_found_by_any_call(clients: dict[str, Client]) -> None:
    alice, bob, admin = clients["alice"], clients["bob"], clients["root"]
    spec = chain_spec(1001, 1002, output="alice/sh010.####.png", description="alice confidential shot")
    name = alice.wait_job(alice.submit_job(spec).name, 120).name
    assert [i.state for i in alice.job_items(name)] == [jobs_pb2.ITEM_STATE_DONE] * 2  # the executor ran it
    missing = not_found(lambda: bob.get_job("jobs/0123456789abcdef"))
    assert not_found(lambda: bob.get_job(name)) == missing.replace("0123456789abcdef", name[5:])
    not_found(lambda: list(bob.job_items(name)))
    not_found(lambda: list(bob.watch_job(name)))
    not_found(lambda: bob.wait_job(name, 1))
    not_found(lambda: bob.cancel_job(name))
    not_found(lambda: bob.delete_job(name))
    assert name not in {o.name for o in bob.list_jobs()}
    assert not any("alice" in o.name or "alice" in str(o.metadata.value) for o in bob.list_jobs())
    # Its owner and an admin key see it; it is still there after bob's delete.
    assert name in {o.name for o in alice.list_jobs()} and name in {o.name for o in admin.list_jobs()}
    assert admin.get_job(name).done and next(iter(admin.watch_job(name))).snapshot.id == name[5:]
    alice.delete_job(name)
    not_found(lambda: alice.get_job(name))


def test_idempotency_keys_are_per_key(clients: dict[str, Client]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    hers, his = (chain_spec(1001, 1001, output="idem/a.####.png", idempotency_key="secret-alice-key"),
                 chain_spec(1002, 1003, output="idem/b.####.png", idempotency_key="secret-alice-key"))
    first, theirs = alice.submit_job(hers), bob.submit_job(his)
    assert theirs.name != first.name
    assert alice.submit_job(hers).name == first.name and bob.submit_job(his).name == theirs.name
    assert bob.wait_job(theirs.name, 120).done and bob.get_job(theirs.name).name == theirs.name
    assert [o.name for o in bob.list_jobs() if o.name in (first.name, theirs.name)] == [theirs.name]


def test_over_http_another_keys_job_is_404(guarded: ServerThread, keys: tuple[Path, Keys],
                                          clients: dict[str, Client]) -> None:
    name = clients["alice"].submit_job(chain_spec(1001, 1001, output="http/a.####.png")).name
    alice, bob = Http(guarded, keys[1]["alice"]), Http(guarded, keys[1]["bob"])
    try:
        status, reply = bob.json("GET", f"/v1/{name}")
        assert status == 404 and reply["error"]["status"] == "NOT_FOUND", reply
        status, reply = bob.json("GET", "/v1/jobs")
        assert status == 200 and name not in {o["name"] for o in reply.get("operations", [])}, reply
        status, reply = alice.json("GET", f"/v1/{name}")
        assert status == 200 and reply["name"] == name
    finally:
        alice.close()
        bob.close()


VERSION_0 = """
CREATE TABLE jobs (id TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE, spec TEXT NOT NULL,
    state INTEGER NOT NULL, executor TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0);
CREATE TABLE items (job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE, idx INTEGER NOT NULL,
    frame INTEGER NOT NULL, input TEXT NOT NULL, output TEXT NOT NULL, state INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx));
CREATE INDEX items_by_seq ON items (job_id, seq);
CREATE INDEX jobs_by_state ON jobs (state, created);
INSERT INTO jobs VALUES ('0ld', 'shot-7', '{}', 3, 'local', 1.0, 2.0, 0);
INSERT INTO items (job_id, idx, frame, input, output, state) VALUES ('0ld', 0, 7, 'a.png', 'b.png', 2);
"""


def test_a_store_from_before_owners_keeps_its_jobs_without_an_owner(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(VERSION_0)
    old.close()
    store = JobStore(path)
    try:
        kept = store.get("0ld")
        assert kept is not None and kept.owner == "" and kept.state == JobState.SUCCEEDED and kept.done == 1
        assert store.get("0ld", owner="alice-id") is None and store.jobs(owner="alice-id") == []
        assert [j.id for j in store.jobs()] == ["0ld"] and store.items("0ld")[0].frame == 7
        # Its idempotency key was nobody's: another owner's same key is another job.
        mine, created = store.create({}, [ItemPlan(1, "a.png", "c.png")], "local", "shot-7", owner="alice-id")
        assert created and mine.owner == "alice-id" and store.jobs(owner="alice-id") == [mine]
        assert store.create({}, [], "local", "shot-7")[0].id == "0ld"
        assert store.delete("0ld") and store.items("0ld") == []  # the cascade still holds
    finally:
        store.close()
    with sqlite3.connect(path) as reopened:
        assert reopened.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    reopened.close()
    JobStore(path).close()  # a second open changes nothing


def test_a_store_from_a_newer_museforge_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as newer:
        newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(UnsafeSetup, match="upgrade museforge"):
        JobStore(path)


def test_without_auth_every_caller_sees_every_job(tmp_path: Path) -> None:
    write_frames(tmp_path / "in", 1001, 1001)
    settings: Settings = job_settings(tmp_path)
    with ServerThread(settings) as server, Client(server.address, timeout=60) as one, \
            Client(server.address, timeout=60) as other:
        name = one.submit_job(chain_spec(1001, 1001, output="open/a.####.png", idempotency_key="k")).name
        assert other.wait_job(name, 120).done and name in {o.name for o in other.list_jobs()}
        again = chain_spec(1001, 1001, output="open/a.####.png", idempotency_key="k")
        assert other.submit_job(again).name == name

"""Jobs.RetryJob on a real server with auth on: a cancelled job's skipped frames and a failed job's
failed frames run again, the frames already done untouched and every output byte-identical to an
uninterrupted run's; refusals; another key's job; the HTTP route; the command line; a retry sent
to the server without the executor lease, run by the one holding it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from museforge.client import Client, field_violations
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import chain_spec, job_settings, key_file, write_frames
from tests.core.test_gateway import Http
from tests.core.test_jobs_lease import runs_jobs
from tests.core.test_jobs_service import meta_of
from tests.core.test_jobs_video import video_spec
from tests.core.test_video import make_video
from tests.servers import ServerThread

Keys = dict[str, str]
LONG = 24  # frames of the job cancelled mid-way


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("job-retry")
    write_frames(root / "in" / "long", 1, LONG, size=(256, 192))
    write_frames(root / "in", 1001, 1004)
    (root / "out").mkdir()
    make_video(root / "in" / "take.mov", frames=30, audio=False, codec="prores_ks")
    return root


@pytest.fixture(scope="module")
def keys(root: Path) -> tuple[Path, Keys]:
    return key_file(root, {"alice": ["generate", "jobs"], "bob": ["generate", "jobs"]})


@pytest.fixture()
def alice(guarded: ServerThread, keys: tuple[Path, Keys]) -> Iterator[Client]:
    with Client(guarded.address, timeout=60, api_key=keys[1]["alice"]) as client:
        yield client


def long_spec(output: str) -> jobs_pb2.JobSpec:
    spec = chain_spec(1, LONG, output=output)
    spec.input.pattern = "long/sh010.####.png"
    return spec


def cancelled_mid_way(client: Client, spec: jobs_pb2.JobSpec) -> jobs_pb2.JobMetadata:
    name = client.submit_job(spec).name
    for event in client.watch_job(name):
        if event.WhichOneof("event") == "item":
            break  # a frame is done: cancel now
    client.cancel_job(name)
    meta = meta_of(client.wait_job(name, 120))
    assert meta.state == jobs_pb2.JOB_STATE_CANCELLED and meta.done >= 1 and meta.skipped >= 1, meta
    return meta


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """Each file's inode and modification time: a frame written again (atomically) changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def refused(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), str(caught.value.details())


def test_a_cancelled_job_retried_does_only_its_skipped_frames(alice: Client, root: Path) -> None:
    meta = cancelled_mid_way(alice, long_spec("retried/f.####.png"))
    folder = root / "out" / "retried"
    before = stamps(folder)
    assert len(before) == meta.done
    operation = alice.retry_job(meta.id)
    again = meta_of(operation)
    assert operation.name == f"jobs/{meta.id}" and not operation.done
    assert again.state == jobs_pb2.JOB_STATE_QUEUED and (again.done, again.skipped) == (meta.done, 0)
    done = meta_of(alice.wait_job(meta.id, 300))
    assert done.state == jobs_pb2.JOB_STATE_SUCCEEDED and (done.done, done.total) == (LONG, LONG)
    assert all(i.state == jobs_pb2.ITEM_STATE_DONE for i in alice.job_items(meta.id))
    after = stamps(folder)
    assert {name: after[name] for name in before} == before  # not one of them written again
    whole = meta_of(alice.wait_job(alice.submit_job(long_spec("whole/f.####.png")).name, 300))
    assert whole.state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert contents(folder) == contents(root / "out" / "whole")


def test_a_failed_frame_is_redone_once_its_plate_is_replaced(alice: Client, root: Path) -> None:
    plates = root / "in" / "plates"
    write_frames(plates, 1, 4)
    good = (plates / "sh010.0003.png").read_bytes()
    (plates / "sh010.0003.png").write_bytes(good[:40])  # a damaged plate
    spec = chain_spec(1, 4, output="plates/f.####.png")
    spec.input.pattern = "plates/sh010.####.png"
    meta = meta_of(alice.wait_job(alice.submit_job(spec).name, 120))
    assert meta.state == jobs_pb2.JOB_STATE_FAILED and (meta.done, meta.failed) == (3, 1)
    code, details = refused(lambda: alice.retry_job(meta.id, ["skipped"]))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "(failed) has no skipped items" in details
    before = stamps(root / "out" / "plates")
    (plates / "sh010.0003.png").write_bytes(good)  # replaced
    assert meta_of(alice.retry_job(meta.id, ["failed"])).failed == 0
    done = meta_of(alice.wait_job(meta.id, 120))
    assert done.state == jobs_pb2.JOB_STATE_SUCCEEDED and done.done == 4
    [item] = [i for i in alice.job_items(meta.id) if i.frame == 3]
    assert item.state == jobs_pb2.ITEM_STATE_DONE and item.error == ""
    after = stamps(root / "out" / "plates")
    assert {name: after[name] for name in before} == before and "f.0003.png" in after
    fresh = chain_spec(1, 4, output="fresh/f.####.png")
    fresh.input.pattern = "plates/sh010.####.png"
    assert meta_of(alice.wait_job(alice.submit_job(fresh).name, 120)).state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert contents(root / "out" / "plates") == contents(root / "out" / "fresh")


def test_a_cancelled_video_job_is_retried_to_the_same_bytes(alice: Client, root: Path) -> None:
    name = alice.submit_job(video_spec("video/take.mp4", video="take.mov", per_item=4)).name
    parts = root / "out" / "video" / ".take.mp4.parts"
    deadline = time.monotonic() + 60
    while not (parts.exists() and any(parts.glob("*.mp4"))) and time.monotonic() < deadline:
        time.sleep(0.01)
    alice.cancel_job(name)
    assert meta_of(alice.wait_job(name, 120)).state == jobs_pb2.JOB_STATE_CANCELLED
    alice.retry_job(name)  # its parts were removed at the cancel: the ranges done run again too
    done = meta_of(alice.wait_job(name, 300))
    assert done.state == jobs_pb2.JOB_STATE_SUCCEEDED, list(alice.job_items(name))
    whole = alice.submit_job(video_spec("video-whole/take.mp4", video="take.mov", per_item=4)).name
    assert meta_of(alice.wait_job(whole, 300)).state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert (root / "out" / "video" / "take.mp4").read_bytes() == (
        root / "out" / "video-whole" / "take.mp4").read_bytes()


def test_refusals_name_the_state_and_the_field(alice: Client, guarded: ServerThread,
                                               keys: tuple[Path, Keys]) -> None:
    name = alice.submit_job(long_spec("refused/f.####.png")).name
    deadline = time.monotonic() + 60
    while meta_of(alice.get_job(name)).state != jobs_pb2.JOB_STATE_RUNNING and time.monotonic() < deadline:
        time.sleep(0.02)
    code, details = refused(lambda: alice.retry_job(name))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "is running" in details, details
    alice.cancel_job(name)
    assert alice.wait_job(name, 120).done
    code, details = refused(lambda: alice.retry_job(name, ["failed"]))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "(cancelled) has no failed items" in details
    succeeded = alice.wait_job(alice.submit_job(chain_spec(1001, 1002, output="ok/f.####.png")).name, 120)
    code, details = refused(lambda: alice.retry_job(succeeded.name))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "(succeeded) has no failed or skipped" in details
    assert meta_of(alice.get_job(succeeded.name)).state == jobs_pb2.JOB_STATE_SUCCEEDED  # left as it was
    with pytest.raises(grpc.RpcError) as caught:
        alice.jobs.RetryJob(jobs_pb2.RetryJobRequest(name=name, states=[jobs_pb2.ITEM_STATE_DONE]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ITEM_STATE_FAILED" in dict(field_violations(caught.value))["states[0]"]
    assert refused(lambda: alice.retry_job("jobs/0123456789abcdef"))[0] == grpc.StatusCode.NOT_FOUND
    with Client(guarded.address, timeout=60, api_key=keys[1]["bob"]) as bob:
        code, details = refused(lambda: bob.retry_job(name))  # alice's job: as if it were not there
    assert code == grpc.StatusCode.NOT_FOUND and details == f"no job {name!r}"
    assert meta_of(alice.get_job(name)).state == jobs_pb2.JOB_STATE_CANCELLED


def test_the_http_route(alice: Client, guarded: ServerThread, keys: tuple[Path, Keys], root: Path) -> None:
    meta = cancelled_mid_way(alice, long_spec("http/f.####.png"))
    owner, other = Http(guarded, keys[1]["alice"]), Http(guarded, keys[1]["bob"])
    try:
        status, reply = other.json("POST", f"/v1/jobs/{meta.id}:retry", {})
        assert status == 404 and reply["error"]["status"] == "NOT_FOUND", reply
        status, reply = owner.json("POST", f"/v1/jobs/{meta.id}:retry", {"states": ["ITEM_STATE_FAILED"]})
        assert status == 400 and reply["error"]["status"] == "FAILED_PRECONDITION", reply
        status, reply = owner.json("POST", f"/v1/jobs/{meta.id}:retry", {"states": ["ITEM_STATE_SKIPPED"]})
        assert status == 200 and reply["name"] == f"jobs/{meta.id}", reply
        assert reply["metadata"]["state"] == "JOB_STATE_QUEUED" and reply["metadata"]["done"] == meta.done
        status, reply = owner.json("POST", f"/v1/jobs/{meta.id}:wait", {"timeout": "300s"})
        assert status == 200 and reply["metadata"]["state"] == "JOB_STATE_SUCCEEDED", reply
    finally:
        owner.close()
        other.close()
    assert len(list((root / "out" / "http").iterdir())) == LONG


def museforge(key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "museforge.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MUSEFORGE_API_KEY": key})


def test_the_command_line(alice: Client, guarded: ServerThread, keys: tuple[Path, Keys], root: Path) -> None:
    name = alice.submit_job(chain_spec(1003, 1006, output="cli/f.####.png")).name
    meta = meta_of(alice.wait_job(name, 120))
    assert (meta.done, meta.failed) == (2, 2)  # frames 1005 and 1006 are not there
    target = ("--server", guarded.address)
    write_frames(root / "in", 1005, 1006)  # now they are
    retried = museforge(keys[1]["alice"], "job", "retry", meta.id, "--failed", "--watch", *target)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.split()[0] == meta.id
    assert f"retrying job {meta.id}: 2 of 4 items run again (2 failed, 0 skipped); 2 done are kept" \
        in retried.stderr
    assert "succeeded, 4/4 done" in retried.stderr
    again = museforge(keys[1]["alice"], "job", "retry", meta.id, *target)
    assert again.returncode != 0, again.stderr
    assert "(succeeded) has no failed or skipped items to retry" in again.stderr
    usage = museforge(keys[1]["alice"], "job", "retry", meta.id, "--failed", "--skipped", *target)
    assert usage.returncode == 2 and "not allowed with" in usage.stderr


def test_a_retry_sent_to_the_other_server_runs_on_the_lease_holder(tmp_path: Path) -> None:
    write_frames(tmp_path / "in" / "long", 1, LONG, size=(256, 192))
    (tmp_path / "out").mkdir()
    with ServerThread(job_settings(tmp_path)) as first, ServerThread(job_settings(tmp_path)) as second, \
            Client(second.address, timeout=60) as client:
        meta = cancelled_mid_way(client, long_spec("leased/f.####.png"))
        client.retry_job(meta.id)  # at once: the holder's poller may not have seen the cancel end
        done = meta_of(client.wait_job(meta.id, 120))
        assert done.state == jobs_pb2.JOB_STATE_SUCCEEDED and done.done == LONG
        assert runs_jobs(first) and not runs_jobs(second)

"""Two servers on one jobs database: one runs the jobs, the other records them, and takes over."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from museforge.client import Client
from museforge.jobs.executor_lease import LeasedJobs
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import chain_spec, job_settings, write_frames
from tests.core.test_jobs_service import meta_of, result_of
from tests.servers import ServerThread

FRAMES = (1001, 1012)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    write_frames(tmp_path / "in", *FRAMES, size=(256, 192))  # a few seconds of work in all
    (tmp_path / "out").mkdir()
    return tmp_path


def runs_jobs(server: ServerThread) -> bool:
    assert server.running is not None
    executor = server.running.jobs.executor
    assert isinstance(executor, LeasedJobs)
    return executor.running_jobs


def state_of(client: Client, name: str) -> int:
    return meta_of(client.get_job(name)).state


def test_a_second_server_with_other_roots_leaves_the_first_ones_job_alone(root: Path) -> None:
    with ServerThread(job_settings(root)) as first, Client(first.address, timeout=60) as client:
        operation = client.submit_job(chain_spec(*FRAMES, output="one/sh010.####.png"))
        # Before: the second resumed the running job, failing every frame for want of input roots.
        with ServerThread(job_settings(root, job_input_roots=[], job_output_roots=[])) as second:
            assert runs_jobs(first) and not runs_jobs(second)
            done = client.wait_job(operation.name, 300)
    assert meta_of(done).state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert all(item.state == jobs_pb2.ITEM_STATE_DONE for item in result_of(done).items)


def test_jobs_sent_to_the_second_run_on_the_first_and_its_cancel_stops_them(root: Path) -> None:
    with ServerThread(job_settings(root)) as first, ServerThread(job_settings(root)) as second, \
            Client(second.address, timeout=60) as client:
        quick = client.submit_job(chain_spec(1001, 1002, output="two/sh010.####.png"))
        assert meta_of(client.wait_job(quick.name, 120)).state == jobs_pb2.JOB_STATE_SUCCEEDED
        slow = client.submit_job(chain_spec(*FRAMES, output="three/sh010.####.png"))
        waited = time.monotonic()
        while state_of(client, slow.name) != jobs_pb2.JOB_STATE_RUNNING and time.monotonic() - waited < 60:
            time.sleep(0.05)
        client.cancel_job(slow.name)
        done = client.wait_job(slow.name, 120)
        assert meta_of(done).state == jobs_pb2.JOB_STATE_CANCELLED
        assert runs_jobs(first) and not runs_jobs(second)
        # Nothing goes on writing frames the job no longer owns.
        written = sorted(p.name for p in (root / "out" / "three").glob("*.png"))
        time.sleep(1.5)
        assert sorted(p.name for p in (root / "out" / "three").glob("*.png")) == written
        skipped = [i for i in client.job_items(slow.name) if i.state == jobs_pb2.ITEM_STATE_SKIPPED]
        assert skipped and all(not (root / "out" / i.output).exists() for i in skipped)


def test_when_the_first_server_stops_the_second_finishes_its_job(root: Path) -> None:
    first: ServerThread | None = ServerThread(job_settings(root)).__enter__()
    try:
        with ServerThread(job_settings(root)) as second, Client(second.address, timeout=60) as client:
            operation = client.submit_job(chain_spec(*FRAMES, output="four/sh010.####.png"))
            waited = time.monotonic()
            while meta_of(client.get_job(operation.name)).done < 1 and time.monotonic() - waited < 120:
                time.sleep(0.05)
            assert first is not None
            first.__exit__(None, None, None)  # mid-job: its frames stop, the job stays RUNNING
            first = None
            done = client.wait_job(operation.name, 300)
            assert runs_jobs(second)
    finally:
        if first is not None:
            first.__exit__(None, None, None)
    assert meta_of(done).state == jobs_pb2.JOB_STATE_SUCCEEDED
    items = result_of(done).items
    assert len(items) == FRAMES[1] - FRAMES[0] + 1
    assert all(item.state == jobs_pb2.ITEM_STATE_DONE for item in items)


def test_a_server_without_job_roots_never_takes_the_jobs_over(root: Path) -> None:
    first: ServerThread | None = ServerThread(job_settings(root)).__enter__()
    try:
        assert first is not None
        with Client(first.address, timeout=60) as client:
            operation = client.submit_job(chain_spec(*FRAMES, output="five/sh010.####.png"))
            waited = time.monotonic()
            while meta_of(client.get_job(operation.name)).done < 1 and time.monotonic() - waited < 120:
                time.sleep(0.05)
        first.__exit__(None, None, None)  # the job stays RUNNING, to resume
        first = None
    finally:
        if first is not None:
            first.__exit__(None, None, None)
    with ServerThread(job_settings(root, job_input_roots=[], job_output_roots=[])) as rootless, \
            Client(rootless.address, timeout=60) as client:
        time.sleep(2.5)  # more than the lease's retry: it would have taken over by now
        assert not runs_jobs(rootless)
        meta = meta_of(client.get_job(operation.name))
        assert meta.state == jobs_pb2.JOB_STATE_RUNNING and meta.failed == 0
    with ServerThread(job_settings(root)) as again, Client(again.address, timeout=60) as client:
        done = client.wait_job(operation.name, 300)
    assert meta_of(done).state == jobs_pb2.JOB_STATE_SUCCEEDED

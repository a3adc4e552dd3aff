"""Batch jobs under attack: oversized fields, a full job store, absurd waits, broken frames.

Each probe is the attack as it was found, scaled down to seconds: a server whose message
limit is small stands in for the 512 MiB default, and the job store's own SQLite size
cap (``PRAGMA max_page_count``) makes its database genuinely full (SQLITE_FULL).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2
from PIL import Image

from museforge.client import Client, field_violations
from museforge.jobs.store import JobStore
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import chain_spec, job_settings, write_frames
from tests.servers import ServerThread

SMALL_MESSAGES = 256 * 1024  # the server's message limit here (default 512 MiB)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jobs-adversarial")
    write_frames(root / "in", 1, 3, size=(16, 16))
    (root / "out").mkdir()
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServerThread]:
    with ServerThread(job_settings(root, max_message_bytes=SMALL_MESSAGES)) as running:
        yield running


@pytest.fixture()
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.address, timeout=60) as client:
        yield client


def denoise(paths: list[str], output: str) -> jobs_pb2.JobSpec:
    spec = jobs_pb2.JobSpec(output_pattern=output, seed=1)
    spec.steps.add(effect="effect.denoise").parameters.update({"sigma": 10})
    spec.input.paths.extend(paths)
    return spec


def refused(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def meta_of(operation: operations_pb2.Operation) -> jobs_pb2.JobMetadata:
    meta = jobs_pb2.JobMetadata()
    assert operation.metadata.Unpack(meta)
    return meta


def test_oversized_fields_are_refused_and_listing_keeps_working(client: Client) -> None:
    # Found: three jobs with a 190 MB description made ListOperations too big for everyone.
    per_job = SMALL_MESSAGES // 3 + 1024  # three of them exceed one answer; each alone fits
    for field, value in (("description", "d" * per_job), ("idempotency_key", "k" * per_job)):
        spec = chain_spec(1, 1, output=f"big/{field}.####.png")
        setattr(spec, field, value)
        error = refused(lambda spec=spec: client.submit_job(spec))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"job.{field}" in dict(field_violations(error))
        assert len(error.details() or "") < 1000  # the value is not echoed back
    for _ in range(3):  # the largest description allowed, three times, lists fine
        spec = chain_spec(1, 1, output="big/ok.####.png", description="d" * 1024)
        client.wait_job(client.submit_job(spec).name, 60)
    listed = client.list_jobs()
    assert len(listed) >= 3 and all(o.ByteSize() < 4096 for o in listed)


def test_listings_are_summaries_and_items_come_in_pages(client: Client, root: Path) -> None:
    missing = [f"m/{i}.png" for i in range(1100)]
    with pytest.raises(grpc.RpcError) as caught:  # not one frame there: refused up front, naming it
        client.submit_job(denoise(missing, "m/o.####.png"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "none of the 1,100 input frames exists" in str(caught.value)
    frames = [*missing[:-1], "sh010.0001.png"]  # missing files but the last: each fails at once
    name = client.submit_job(denoise(frames, "m/o.####.png")).name
    operation = client.wait_job(name, 120)
    assert operation.done and meta_of(operation).failed == 1099
    result = jobs_pb2.JobResult()
    operation.response.Unpack(result)
    assert 0 < len(result.items) < 1100 and result.next_page_token  # the first page only
    [summary] = [o for o in client.list_jobs("done=true") if o.name == name]
    listed = jobs_pb2.JobResult()
    summary.response.Unpack(listed)
    assert not listed.items and listed.next_page_token and not meta_of(summary).job.input.paths
    seen, token = [], ""
    while True:
        page = client.jobs.ListJobItems(jobs_pb2.ListJobItemsRequest(name=name, page_token=token))
        seen += [item.input for item in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == frames
    done = client.jobs.ListJobItems(jobs_pb2.ListJobItemsRequest(name=name, filter="state=DONE"))
    assert [item.input for item in done.items] == ["sh010.0001.png"] and not done.next_page_token


def test_an_absurd_wait_timeout_is_clamped_and_a_negative_one_refused(client: Client) -> None:
    # Found: WaitOperation with a timeout past what Python's timedelta holds answered UNKNOWN.
    name = client.wait_job(client.submit_job(chain_spec(1, 1, output="wait/f.####.png")).name, 60).name
    for seconds in (10**14, 2**63 - 1):
        request = operations_pb2.WaitOperationRequest(
            name=name, timeout=duration_pb2.Duration(seconds=seconds)
        )
        assert client.operations.WaitOperation(request, timeout=30).done
    request = operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=-5))
    error = refused(lambda: client.operations.WaitOperation(request, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "timeout" in dict(field_violations(error))


def test_truncated_frames_fail_their_items_not_the_job(client: Client, root: Path) -> None:
    png = (root / "in" / "sh010.0001.png").read_bytes()
    jpeg = io.BytesIO()
    with Image.open(io.BytesIO(png)) as image:
        image.save(jpeg, "JPEG", quality=90)
    (root / "in" / "cut.png").write_bytes(png[: len(png) // 2])
    (root / "in" / "cut.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) * 3 // 4])
    spec = denoise(["sh010.0001.png", "cut.png", "cut.jpg"], "cut/o.#.png")
    operation = client.wait_job(client.submit_job(spec).name, 60)
    result = jobs_pb2.JobResult()
    operation.response.Unpack(result)
    assert [i.state for i in result.items] == [jobs_pb2.ITEM_STATE_DONE] + [jobs_pb2.ITEM_STATE_FAILED] * 2
    assert all(i.error for i in result.items[1:]) and meta_of(operation).state == jobs_pb2.JOB_STATE_FAILED
    assert sorted(p.name for p in (root / "out" / "cut").iterdir()) == ["o.0.png"]  # nothing for the broken


def frames_spec(count: int, output: str) -> jobs_pb2.JobSpec:
    spec = denoise([], output)
    spec.input.pattern, spec.input.first_frame, spec.input.last_frame = "sh010.####.png", 1, count
    return spec


def test_a_full_job_store_pauses_the_job_ends_watchers_and_refuses_plainly(tmp_path: Path) -> None:
    # Found: a full disk under the job database left a job RUNNING with frames written but
    # unrecorded, `job watch` hung, and SubmitJob answered UNKNOWN with SQLite's message.
    count = 300  # enough rows that recording a frame soon needs a new database page
    write_frames(tmp_path / "in", 1, count, size=(8, 8))
    with ServerThread(job_settings(tmp_path)) as server, Client(server.address, timeout=60) as client:
        assert server.running is not None
        store: JobStore = server.running.jobs.store
        store.cap_size(0)  # the database may not grow by a page: full, as SQLite reports it
        error = refused(lambda: client.submit_job(frames_spec(count, "x/f.####.png")))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = error.details() or ""
        assert (
            "disk is full" in details and "database or disk" not in details and str(tmp_path) not in details
        )

        store.cap_size(None)
        name = client.submit_job(frames_spec(count, "full/f.####.png")).name
        store.cap_size(0)  # full again, under the running job
        watch = jobs_pb2.WatchJobRequest(name=name)
        watched = refused(lambda: list(client.jobs.WatchJob(watch, timeout=120)))
        assert watched.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # ended, not hung to the deadline
        paused = meta_of(client.wait_job(name, 30))
        assert paused.state == jobs_pb2.JOB_STATE_PAUSED and "disk is full" in paused.message
        written = len(list((tmp_path / "out" / "full").glob("*.png")))
        assert paused.done < written < count  # a frame written but not recorded: done again later

        store.cap_size(None)  # space again: the next job recorded resumes the paused one
        client.wait_job(client.submit_job(frames_spec(1, "after/f.####.png")).name, 60)
        finished = meta_of(client.wait_job(name, 120))
        assert finished.state == jobs_pb2.JOB_STATE_SUCCEEDED and finished.done == count
        assert len(list((tmp_path / "out" / "full").glob("*.png"))) == count

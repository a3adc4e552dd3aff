"""Batch jobs through a real server: Operations, WatchJob, chains, cancel, delete, bad input."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.longrunning import operations_pb2
from google.rpc import code_pb2
from PIL import Image

from museforge.client import Client, field_violations
from museforge.engine.catalogue import EffectInput
from museforge.jobs.chain import intermediate_format
from museforge.jobs.service import store_failure
from museforge.jobs.store import StoreError
from museforge.server.status import grpc_code
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import chain_spec, job_settings, write_frames
from tests.servers import ServerThread


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jobs")
    write_frames(root / "in", 1001, 1008)
    (root / "out").mkdir()
    return root


def result_of(operation: operations_pb2.Operation) -> jobs_pb2.JobResult:
    result = jobs_pb2.JobResult()
    assert operation.response.Unpack(result)
    return result


def meta_of(operation: operations_pb2.Operation) -> jobs_pb2.JobMetadata:
    meta = jobs_pb2.JobMetadata()
    assert operation.metadata.Unpack(meta)
    return meta


def test_a_chain_runs_every_frame_like_two_apply_calls(
    jobs: Client, running: ServerThread, root: Path
) -> None:
    operation = jobs.submit_job(chain_spec(1001, 1004, output="chain/sh010.####.png"))
    assert operation.name.startswith("jobs/") and meta_of(operation).total == 4
    done = jobs.wait_job(operation.name, 120)
    assert done.done and meta_of(done).state == jobs_pb2.JOB_STATE_SUCCEEDED
    items = result_of(done).items
    assert [i.state for i in items] == [jobs_pb2.ITEM_STATE_DONE] * 4
    assert [i.output for i in items] == [f"chain/sh010.{f}.png" for f in range(1001, 1005)]
    # The same chain through the engine directly: denoise to the lossless hand-over format, upscale.
    engine = running.running.engine  # type: ignore[union-attr]
    source = (root / "in" / "sh010.1002.png").read_bytes()
    between = intermediate_format(engine, "effect.denoise", "png")
    assert between == "png16"
    first = engine.apply_effect(
        "effect.denoise", {"sigma": 25}, [EffectInput(source, "sh010.1002.png")], seed=7, fmt=between
    )[0].data
    second = engine.apply_effect(
        "effect.upscale", {"scale": 2}, [EffectInput(first, "sh010.1002.png")], seed=7, fmt="png"
    )[0].data
    assert (root / "out" / "chain" / "sh010.1002.png").read_bytes() == second
    with Image.open(io.BytesIO(second)) as image:
        assert image.size == (128, 96)


def test_watch_streams_a_snapshot_every_item_and_a_final_snapshot(jobs: Client) -> None:
    operation = jobs.submit_job(chain_spec(1001, 1003, output="watched/f.####.png"))
    events = list(jobs.watch_job(operation.name))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "snapshot" and kinds[-1] == "snapshot"
    finished = {e.item.frame for e in events if e.WhichOneof("event") == "item"}
    assert finished == {1001, 1002, 1003}
    assert events[-1].snapshot.done == 3 and events[-1].snapshot.state == jobs_pb2.JOB_STATE_SUCCEEDED


def test_missing_frames_fail_alone_and_the_job_says_failed(jobs: Client) -> None:
    operation = jobs.wait_job(jobs.submit_job(chain_spec(1007, 1010, output="gap/f.####.png")).name, 120)
    meta, items = meta_of(operation), result_of(operation).items
    assert meta.state == jobs_pb2.JOB_STATE_FAILED and (meta.done, meta.failed) == (2, 2)
    assert [i.state for i in items] == [
        jobs_pb2.ITEM_STATE_DONE,
        jobs_pb2.ITEM_STATE_DONE,
        jobs_pb2.ITEM_STATE_FAILED,
        jobs_pb2.ITEM_STATE_FAILED,
    ]
    assert "sh010.1009.png not found" in items[2].error


def test_an_undecodable_frame_fails_with_the_reason(jobs: Client, root: Path) -> None:
    (root / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    spec = chain_spec(0, 0, output="broken/out.#.png")
    spec.input.ClearField("pattern")
    spec.input.paths.append("broken.png")
    operation = jobs.wait_job(jobs.submit_job(spec).name, 60)
    [item] = result_of(operation).items
    assert item.state == jobs_pb2.ITEM_STATE_FAILED and "inputs[0]" in item.error


def test_idempotency_key_returns_the_same_job(jobs: Client) -> None:
    spec = chain_spec(1001, 1002, output="idem/f.####.png", seed=None, idempotency_key="sh010-v1")
    first = jobs.submit_job(spec)
    again = jobs.submit_job(spec)  # the seed left unset again: still the same job
    assert again.name == first.name and meta_of(again).total == 2


def test_an_idempotency_key_sent_with_another_job_is_refused_naming_it(jobs: Client) -> None:
    first = jobs.submit_job(chain_spec(1001, 1002, output="idem2/f.####.png", idempotency_key="sh010-v2"))
    changed = chain_spec(1001, 1008, output="other2/f.####.png", idempotency_key="sh010-v2")
    with pytest.raises(grpc.RpcError) as caught:
        jobs.submit_job(changed)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, why)] = field_violations(caught.value)
    job_id = first.name.removeprefix("jobs/")
    assert field == "job.idempotency_key" and job_id in why
    assert "job.input" in why and "job.output_pattern" in why and "job.steps" not in why
    assert [op.name for op in jobs.list_jobs()].count(first.name) == 1


def test_deleting_a_job_between_pages_skips_none(jobs: Client) -> None:
    made = [jobs.wait_job(jobs.submit_job(chain_spec(1001, 1001, output=f"pages/{i}.####.png")).name, 60).name
            for i in range(4)]
    listed = [o.name for o in jobs.list_jobs("done=true")]
    first = jobs.operations.ListOperations(operations_pb2.ListOperationsRequest(
        name="jobs", filter="done=true", page_size=listed.index(made[1]) + 1))
    assert first.operations[-1].name == made[1]
    jobs.delete_job(made[0])  # on the first page: offsets would now start the next one a job late
    rest = jobs.operations.ListOperations(operations_pb2.ListOperationsRequest(
        name="jobs", filter="done=true", page_token=first.next_page_token))
    assert [o.name for o in rest.operations][:2] == made[2:4]
    with pytest.raises(grpc.RpcError) as caught:
        jobs.operations.ListOperations(operations_pb2.ListOperationsRequest(name="jobs", page_token="3"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_list_filters_by_state_and_delete_keeps_the_outputs(jobs: Client, root: Path) -> None:
    name = jobs.wait_job(jobs.submit_job(chain_spec(1001, 1001, output="kept/f.####.png")).name, 60).name
    assert name in [o.name for o in jobs.list_jobs("state=SUCCEEDED")]
    assert name not in [o.name for o in jobs.list_jobs("state=RUNNING OR state=QUEUED")]
    assert name in [o.name for o in jobs.list_jobs("done=true", page_size=1)]  # paged through
    jobs.delete_job(name)
    with pytest.raises(grpc.RpcError) as caught:
        jobs.get_job(name)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (root / "out" / "kept" / "f.1001.png").is_file()


def test_cancel_stops_a_job_and_records_what_finished(jobs: Client, root: Path) -> None:
    write_frames(root / "in" / "long", 1, 40, size=(256, 192))
    spec = chain_spec(1, 40, output="cancelled/f.####.png")
    spec.input.pattern = "long/sh010.####.png"
    name = jobs.submit_job(spec).name
    with pytest.raises(grpc.RpcError) as caught:
        jobs.delete_job(name)  # not while it runs
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    for event in jobs.watch_job(name):
        if event.WhichOneof("event") == "item":
            break  # one frame is done: cancel now
    jobs.cancel_job(name)
    operation = jobs.wait_job(name, 60)
    meta = meta_of(operation)
    assert operation.done and meta.state == jobs_pb2.JOB_STATE_CANCELLED
    assert operation.error.code == code_pb2.CANCELLED
    assert 1 <= meta.done < 40 and meta.done + meta.failed + meta.skipped == 40
    written = sorted(p.name for p in (root / "out" / "cancelled").glob("*.png"))
    assert len(written) == meta.done  # every finished frame, and only those, is on disk
    assert not list((root / "out" / "cancelled").glob(".*.part"))


def expect_error(jobs: Client, spec: jobs_pb2.JobSpec, code: grpc.StatusCode, field: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        jobs.submit_job(spec)
    assert caught.value.code() == code
    assert field in dict(field_violations(caught.value)), field_violations(caught.value)


def test_bad_jobs_name_the_field(jobs: Client) -> None:
    bad = chain_spec(1001, 1002)
    bad.steps[1].effect = "effect.sharpen"
    expect_error(jobs, bad, grpc.StatusCode.INVALID_ARGUMENT, "job.steps[1].effect")
    bad = chain_spec(1001, 1002)
    bad.steps[0].parameters.update({"sigma": 500})
    expect_error(jobs, bad, grpc.StatusCode.INVALID_ARGUMENT, "job.steps[0].parameters.sigma")
    bad = chain_spec(1001, 1002)
    bad.steps.add(effect="effect.interpolate")
    expect_error(jobs, bad, grpc.StatusCode.INVALID_ARGUMENT, "job.steps[2].effect")
    bad = chain_spec(1001, 1002)
    bad.steps.add(effect="video.shots")
    with pytest.raises(grpc.RpcError) as caught:
        jobs.submit_job(bad)
    assert "reads a video file whole" in dict(field_violations(caught.value))["job.steps[2].effect"]
    expect_error(jobs, chain_spec(1005, 1001), grpc.StatusCode.INVALID_ARGUMENT, "job.input.last_frame")
    expect_error(jobs, chain_spec(1, 10**7), grpc.StatusCode.INVALID_ARGUMENT, "job.input.last_frame")
    expect_error(
        jobs,
        chain_spec(1001, 1002, output="same.png"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "job.output_pattern",
    )
    expect_error(jobs, chain_spec(1001, 1002, format="mp3"), grpc.StatusCode.INVALID_ARGUMENT, "job.format")
    for pattern in ("g/####/", "####"):  # a folder, or no extension: files named g/0001, 0001
        expect_error(jobs, chain_spec(1001, 1002, output=pattern), grpc.StatusCode.INVALID_ARGUMENT,
                     "job.output_pattern")
    bad = chain_spec(1001, 1002)
    bad.input.pattern = "sh010.png"
    expect_error(jobs, bad, grpc.StatusCode.INVALID_ARGUMENT, "job.input.pattern")
    bad = jobs_pb2.JobSpec(output_pattern="x.#.png")
    bad.input.paths.append("a.png")
    expect_error(jobs, bad, grpc.StatusCode.INVALID_ARGUMENT, "job.steps")


def test_paths_outside_the_sandbox_are_refused(jobs: Client) -> None:
    bad = chain_spec(1001, 1002)
    bad.input.pattern = "../../etc/sh010.####.png"
    expect_error(jobs, bad, grpc.StatusCode.PERMISSION_DENIED, "job.input.pattern")
    expect_error(
        jobs,
        chain_spec(1001, 1002, output="/tmp/elsewhere/f.####.png"),
        grpc.StatusCode.PERMISSION_DENIED,
        "job.output_pattern",
    )
    bad = chain_spec(0, 0)
    bad.input.ClearField("pattern")
    bad.input.paths.append("/etc/passwd")
    expect_error(jobs, bad, grpc.StatusCode.PERMISSION_DENIED, "job.input.paths[0]")


def test_a_failed_job_leaves_no_temporary_file_of_a_killed_writer(jobs: Client, root: Path) -> None:
    # What a writer killed mid-frame leaves; here for a frame whose input is gone since, so that
    # it fails before writing (a frame that writes removes its own first).
    out = root / "out" / "stale"
    out.mkdir()
    left = [out / f".sh010.{frame}.png.k1ll3d.part" for frame in (1008, 1009)]
    for path in left:
        path.write_bytes(b"half a frame")
    operation = jobs.submit_job(chain_spec(1008, 1009, output="stale/sh010.####.png"))
    done = jobs.wait_job(operation.name, 120)
    assert meta_of(done).state == jobs_pb2.JOB_STATE_FAILED
    assert (out / "sh010.1008.png").is_file() and not (out / "sh010.1009.png").exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".part")]


def test_a_loop_of_links_is_refused_naming_the_field_not_the_servers_path(jobs: Client, root: Path) -> None:
    loop = root / "in" / "loop"
    loop.mkdir()
    (loop / "l.0002.png").symlink_to("l.0003.png")
    (loop / "l.0003.png").symlink_to("l.0002.png")
    bad = chain_spec(2, 3)
    bad.input.pattern = "loop/l.####.png"
    expect_error(jobs, bad, grpc.StatusCode.INVALID_ARGUMENT, "job.input.pattern")
    out = root / "out" / "oloop"
    out.mkdir()
    (out / "sh010.1001.png").symlink_to("sh010.1001.png")
    with pytest.raises(grpc.RpcError) as caught:
        jobs.submit_job(chain_spec(1001, 1001, output="oloop/sh010.####.png"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    said = dict(field_violations(caught.value))["job.output_pattern"]
    assert "loop of symbolic links" in said and str(root) not in said


def test_unknown_jobs_and_bad_filters(jobs: Client) -> None:
    for call in (
        lambda: jobs.get_job("jobs/nope"),
        lambda: jobs.cancel_job("nope"),
        lambda: list(jobs.watch_job("jobs/nope")),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        jobs.list_jobs("colour=blue")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "filter" in dict(field_violations(caught.value))
    with pytest.raises(grpc.RpcError) as caught:
        jobs.get_job("jobs/a/b")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_wait_returns_when_the_timeout_passes(jobs: Client, root: Path) -> None:
    write_frames(root / "in" / "slow", 1, 12, size=(256, 192))
    spec = chain_spec(1, 12, output="slow/f.####.png")
    spec.input.pattern = "slow/sh010.####.png"
    name = jobs.submit_job(spec).name
    early = jobs.wait_job(name, 0.3)
    assert not early.done
    assert jobs.wait_job(name, 120).done
    assert np.all([i.state == jobs_pb2.ITEM_STATE_DONE for i in result_of(jobs.get_job(name)).items])


def test_an_exr_sequence_stays_scene_linear_float_through_the_chain(jobs: Client, root: Path) -> None:
    from museforge import encode_exr
    from museforge.engine.generator import Media

    rng = np.random.default_rng(3)
    for frame in (1, 2):
        linear = (rng.random((48, 64, 3)) * 0.8).astype(np.float32)
        linear[10:14, 10:14] = 4.0  # a highlight above 1, as film plates have
        data = encode_exr(Media("image", linear, 0, colorspace="linear"), {})
        (root / "in" / "exr").mkdir(exist_ok=True)
        (root / "in" / "exr" / f"plate.{frame:04d}.exr").write_bytes(data)
    spec = chain_spec(1, 2, output="exr/plate.####.exr")
    spec.input.pattern = "exr/plate.####.exr"
    operation = jobs.wait_job(jobs.submit_job(spec).name, 120)
    assert meta_of(operation).state == jobs_pb2.JOB_STATE_SUCCEEDED
    import OpenEXR

    with OpenEXR.File(str(root / "out" / "exr" / "plate.0002.exr")) as result:
        pixels = np.asarray(next(iter(result.channels().values())).pixels)
    assert pixels.shape[:2] == (96, 128) and pixels.dtype in (np.float16, np.float32)
    assert float(pixels.max()) > 2.0  # the highlight survived both steps as float


def test_the_output_extension_names_the_format_when_none_is_given(jobs: Client, root: Path) -> None:
    spec = chain_spec(1001, 1001, output="named/sh010.####.exr")  # PNG frames in, no format
    operation = jobs.wait_job(jobs.submit_job(spec).name, 120)
    assert meta_of(operation).state == jobs_pb2.JOB_STATE_SUCCEEDED
    assert (root / "out" / "named" / "sh010.1001.exr").read_bytes()[:4] == b"\x76\x2f\x31\x01"  # OpenEXR
    expect_error(jobs, chain_spec(1001, 1002, output="named/sh010.####.tif"),
                 grpc.StatusCode.INVALID_ARGUMENT, "job.output_pattern")
    expect_error(jobs, chain_spec(1001, 1002, output="named/sh010.####.exr", format="png"),
                 grpc.StatusCode.INVALID_ARGUMENT, "job.output_pattern")


def test_cancelling_a_queued_job_skips_it_at_once(jobs: Client, root: Path) -> None:
    write_frames(root / "in" / "busy", 1, 20, size=(256, 192))
    busy = chain_spec(1, 20, output="busy/f.####.png")
    busy.input.pattern = "busy/sh010.####.png"
    first = jobs.submit_job(busy).name
    waiting = jobs.submit_job(chain_spec(1001, 1004, output="queued/f.####.png")).name
    jobs.cancel_job(waiting)
    operation = jobs.get_job(waiting)  # at once: nothing was running it
    meta = meta_of(operation)
    assert operation.done and meta.state == jobs_pb2.JOB_STATE_CANCELLED
    assert (meta.done, meta.skipped) == (0, 4)
    jobs.cancel_job(first)
    assert jobs.wait_job(first, 60).done


def test_a_job_never_overwrites_its_inputs_or_the_job_store(root: Path) -> None:
    settings = job_settings(
        root,
        job_output_roots=[str(root)],
        job_input_roots=[str(root / "in")],
        data_dir=str(root / "data-guarded"),
    )
    with ServerThread(settings) as server, Client(server.address, timeout=30) as client:
        expect_error(
            client,
            chain_spec(1001, 1002, output=str(root / "in" / "sh010.####.png")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "job.output_pattern",
        )
        expect_error(
            client,
            chain_spec(1001, 1002, output="data-guarded/jobs.####.sqlite3"),
            grpc.StatusCode.PERMISSION_DENIED,
            "job.output_pattern",
        )


def test_without_configured_roots_jobs_are_refused(tmp_path: Path) -> None:
    settings = job_settings(tmp_path, job_input_roots=[], job_output_roots=[])
    with ServerThread(settings) as server, Client(server.address, timeout=30) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.submit_job(chain_spec(1, 2))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "set job_input_roots" in dict(field_violations(caught.value))["job.input.pattern"]


def test_every_field_has_a_size_limit(jobs: Client) -> None:
    def oversized(field: str, edit: Callable[[jobs_pb2.JobSpec], None]) -> None:
        spec = chain_spec(1001, 1002)
        edit(spec)
        expect_error(jobs, spec, grpc.StatusCode.INVALID_ARGUMENT, field)

    oversized("job.steps", lambda s: s.steps.extend([jobs_pb2.EffectStep(effect="effect.denoise")] * 15))
    oversized("job.steps[0].effect", lambda s: setattr(s.steps[0], "effect", "e" * 129))
    oversized(
        "job.steps[1].parameters", lambda s: s.steps[1].parameters.update({"scale": 2, "x": "p" * 17000})
    )
    oversized("job.input.pattern", lambda s: setattr(s.input, "pattern", "p" * 1020 + ".####.png"))
    oversized("job.output_pattern", lambda s: setattr(s, "output_pattern", "o" * 1020 + ".####.png"))
    oversized("job.format", lambda s: setattr(s, "format", "f" * 17))
    oversized("job.idempotency_key", lambda s: setattr(s, "idempotency_key", "k" * 129))
    oversized("job.description", lambda s: setattr(s, "description", "d" * 1025))

    def paths(spec: jobs_pb2.JobSpec) -> None:
        spec.input.ClearField("pattern")
        spec.input.paths.extend(["a.png", "p" * 1025])

    oversized("job.input.paths[1]", paths)
    # At the limits, the job is accepted.
    spec = chain_spec(1001, 1001, output="limits/" + "/".join(["o" * 200] * 5) + ".####.png")
    spec.description, spec.idempotency_key = "d" * 1024, "k" * 128
    assert meta_of(jobs.wait_job(jobs.submit_job(spec).name, 60)).state == jobs_pb2.JOB_STATE_SUCCEEDED


def test_items_come_in_pages_with_a_filter(jobs: Client) -> None:
    name = jobs.wait_job(jobs.submit_job(chain_spec(1006, 1010, output="paged/f.####.png")).name, 120).name
    assert [i.frame for i in jobs.job_items(name, page_size=2)] == [1006, 1007, 1008, 1009, 1010]
    failed = jobs.jobs.ListJobItems(jobs_pb2.ListJobItemsRequest(name=name, filter="state=ITEM_STATE_FAILED"))
    assert [i.frame for i in failed.items] == [1009, 1010] and not failed.next_page_token
    for request, field in (
        (jobs_pb2.ListJobItemsRequest(name=name, filter="colour=blue"), "filter"),
        (jobs_pb2.ListJobItemsRequest(name=name, page_token="x"), "page_token"),
        (jobs_pb2.ListJobItemsRequest(name=name, page_size=-1), "page_size"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            jobs.jobs.ListJobItems(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in dict(field_violations(caught.value))
    with pytest.raises(grpc.RpcError) as caught:
        jobs.jobs.ListJobItems(jobs_pb2.ListJobItemsRequest(name="jobs/nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_failed_store_answers_in_plain_words() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    broken = sqlite3.OperationalError("disk I/O error")
    answer = store_failure(StoreError(full))
    assert grpc_code(answer) == grpc.StatusCode.RESOURCE_EXHAUSTED and "its disk is full" in answer.message
    assert "database or disk" not in answer.message
    assert grpc_code(store_failure(StoreError(broken))) == grpc.StatusCode.UNAVAILABLE

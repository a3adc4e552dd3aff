"""Dynamic batching on the real runtime and the shipped image.digits model."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest

from museforge.client import Client
from museforge.config import Settings
from museforge.engine.generator import ModelSource
from museforge.inference import grpc_service_pb2 as oip
from museforge.inference import grpc_service_pb2_grpc as oip_grpc
from museforge.plugins.image.digits import MODELS_DIR
from museforge.runtime.model_checks import check_range
from museforge.runtime.sessions import InputError, ModelOverrides, ModelRefused, Runtime, RuntimeOptions
from tests.models import served_version
from tests.servers import ServerThread

MODEL = "image.digits"


def runtime(**options: object) -> Runtime:
    rt = Runtime(RuntimeOptions(**options))
    assert rt.load(ModelSource(MODEL, MODELS_DIR)).ready
    return rt


@pytest.fixture()
def slow_window() -> Iterator[Runtime]:
    """A long queue delay, so everything submitted from one thread lands in one window."""
    rt = runtime(max_queue_delay_us=300_000)
    yield rt
    rt.close()


def feed(seed: int, n: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"z": rng.standard_normal((n, 100)).astype(np.float32),
            "label": rng.integers(0, 10, n).astype(np.int64)}


def direct(rt: Runtime, inputs: dict[str, np.ndarray]) -> np.ndarray:
    session = rt.models[MODEL].session
    assert session is not None
    return np.asarray(session.run(["image"], inputs)[0])


def test_results_come_back_to_their_requests_in_order(slow_window: Runtime) -> None:
    feeds = [feed(i, n=1 + i % 3) for i in range(12)]
    futures = [slow_window.submit(MODEL, f) for f in feeds]
    for f, future in zip(feeds, futures, strict=True):
        np.testing.assert_allclose(future.result(30)["image"], direct(slow_window, f), atol=1e-6)
    stats = slow_window.models[MODEL].stats.snapshot()
    assert stats.success.count == 12
    assert stats.inference_count == sum(1 + i % 3 for i in range(12))
    assert stats.execution_count < 12, "requests were merged"


def test_a_bad_request_in_a_burst_fails_alone(slow_window: Runtime) -> None:
    good = [slow_window.submit(MODEL, feed(i)) for i in range(3)]
    with pytest.raises(InputError, match="label"):
        slow_window.submit(MODEL, {"z": feed(9)["z"], "label": np.zeros(1, np.float32)})
    with pytest.raises(InputError, match="shape"):
        slow_window.submit(MODEL, {"z": np.zeros((1, 99), np.float32), "label": feed(9)["label"]})
    with pytest.raises(InputError, match="disagree"):
        slow_window.submit(MODEL, {"z": feed(1, 2)["z"], "label": feed(1, 3)["label"]})
    more = [slow_window.submit(MODEL, feed(i)) for i in range(3, 6)]
    assert all(f.result(30)["image"].shape == (1, 1, 28, 28) for f in good + more)
    assert slow_window.models[MODEL].stats.snapshot().fail.count == 0


def test_a_cancelled_request_is_dropped_from_its_batch(slow_window: Runtime) -> None:
    futures: list[Future[dict[str, np.ndarray]]] = [
        slow_window.submit(MODEL, feed(i, n=2)) for i in range(4)]
    assert futures[1].cancel()
    for i in (0, 2, 3):
        assert futures[i].result(30)["image"].shape == (2, 1, 28, 28)
    stats = slow_window.models[MODEL].stats.snapshot()
    assert stats.inference_count == 6 and stats.success.count == 3
    # Counted as failed, as a request whose run was stopped is: the statistics do not depend on
    # which side of the run's start the cancel fell (it once went uncounted when queued).
    assert stats.fail.count == 1


def test_out_of_range_values_are_refused_before_they_are_queued(slow_window: Runtime) -> None:
    good = [slow_window.submit(MODEL, feed(i)) for i in range(3)]
    for label in (99, -1, 10):  # ONNX Runtime would even take -1 (Gather counts from the end)
        with pytest.raises(InputError, match=r"label: values must be within \[0, 9\]"):
            slow_window.submit(MODEL, {"z": feed(0)["z"], "label": np.array([label], np.int64)})
    assert all(f.result(30)["image"].shape == (1, 1, 28, 28) for f in good)
    assert slow_window.models[MODEL].stats.snapshot().fail.count == 0


def test_a_single_value_is_checked_as_an_array_of_them_is() -> None:
    for values in ([np.nan], [np.nan, 0.5], [2.0], [0.5, 2.0], [-0.5]):
        with pytest.raises(InputError, match=r"x: values must be within \[0, 1\]"):
            check_range("x", np.array(values, np.float32), (0.0, 1.0))
    check_range("x", np.array([1.0], np.float32), (0.0, 1.0))
    check_range("x", np.array([0.1], np.float32), (0.0, 0.1))  # compared in float32, as an array's max is
    check_range("x", np.array([0.1, 0.1], np.float32), (0.0, 0.1))


def test_an_unknown_input_is_named_before_a_known_ones_fault(slow_window: Runtime) -> None:
    # The same number of inputs as the model takes, one misnamed and one of the wrong type.
    with pytest.raises(InputError, match="nope: unknown input"):
        slow_window.submit(MODEL, {"z": np.zeros((1, 100), np.float64), "nope": np.zeros(1, np.int64)})
    check_range("x", np.array([[0]], np.int64), (0, 1))


def test_a_failing_merged_run_fails_only_the_request_that_fails_alone(slow_window: Runtime) -> None:
    # Straight into the batcher, past the runtime's checks: what a value the manifest does not
    # bound would do. The merged run fails; each request is run again on its own.
    batcher = slow_window.models[MODEL].batcher
    assert batcher is not None
    poison = {"z": feed(0)["z"], "label": np.array([99], np.int64)}
    feeds = [feed(i, n=1 + i % 2) for i in range(4)]
    futures = [batcher.submit(f) for f in feeds[:2]] + [batcher.submit(poison)] + \
        [batcher.submit(f) for f in feeds[2:]]
    bad = futures.pop(2)
    for f, future in zip(feeds, futures, strict=True):
        np.testing.assert_allclose(future.result(30)["image"], direct(slow_window, f), atol=1e-6)
    with pytest.raises(ModelRefused) as info:
        bad.result(30)
    assert info.value.fields == ("label",) and "out of data bounds" in info.value.message
    assert "onnxruntime_src" not in str(info.value)
    stats = slow_window.models[MODEL].stats.snapshot()
    assert (stats.success.count, stats.fail.count) == (4, 1)
    # Only the lone runs count: the failed merged run produced nothing.
    assert stats.execution_count == 4 and stats.inference_count == sum(1 + i % 2 for i in range(4))


def test_max_batch_size_is_honoured() -> None:
    rt = runtime(max_queue_delay_us=300_000, overrides={MODEL: ModelOverrides(max_batch_size=4)})
    try:
        futures = [rt.submit(MODEL, feed(i, n=1 + i % 2)) for i in range(10)]
        for f in futures:
            f.result(30)
        stats = rt.models[MODEL].stats.snapshot()
        assert max(stats.batches) <= 4 and stats.inference_count == 15
        with pytest.raises(InputError, match="max_batch_size"):
            rt.submit(MODEL, feed(0, n=5))
    finally:
        rt.close()


def test_a_lone_request_is_flushed_after_the_delay() -> None:
    rt = runtime(max_queue_delay_us=50_000)
    try:
        out = rt.submit(MODEL, feed(0, n=3)).result(30)
        assert out["image"].shape == (3, 1, 28, 28)
        assert rt.models[MODEL].stats.snapshot().batches.keys() == {3}
    finally:
        rt.close()


def test_batching_can_be_turned_off_per_model() -> None:
    rt = runtime(overrides={MODEL: ModelOverrides(batching=False)})
    assert rt.models[MODEL].batcher is None
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: rt.infer(MODEL, feed(i)), range(8)))
    assert len(outs) == 8
    assert rt.models[MODEL].stats.snapshot().execution_count == 8


def test_concurrent_generate_and_model_infer_share_session_runs() -> None:
    settings = Settings(address="127.0.0.1:0", max_queue_delay_us=20_000)
    with ServerThread(settings) as server, Client(server.address, timeout=60) as client:
        stub = oip_grpc.GRPCInferenceServiceStub(client.channel)
        start = threading.Barrier(16, timeout=60)

        def infer(i: int) -> np.ndarray:
            f = feed(i)
            request = oip.ModelInferRequest(
                model_name=MODEL,
                inputs=[oip.ModelInferRequest.InferInputTensor(name="z", datatype="FP32",
                                                               shape=[1, 100]),
                        oip.ModelInferRequest.InferInputTensor(name="label", datatype="INT64",
                                                               shape=[1])],
                raw_input_contents=[f["z"].tobytes(), f["label"].tobytes()])
            start.wait()
            reply = stub.ModelInfer(request)
            return np.frombuffer(reply.raw_output_contents[0], np.float32)

        def generate(i: int) -> bytes:
            start.wait()
            return bytes(client.generate(MODEL, {"digit": i % 10}, seed=i).artifacts[0].data)

        with ThreadPoolExecutor(16) as pool:
            inferring = [pool.submit(infer, i) for i in range(8)]
            generating = [pool.submit(generate, i) for i in range(8)]
            inferred = [f.result(60) for f in inferring]
            generated = [f.result(60) for f in generating]
        # A bad request in the middle of traffic fails alone.
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(oip.ModelInferRequest(model_name=MODEL))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        [stats] = client.statistics(MODEL)
        assert stats.request_count == 16 and stats.batching
        assert stats.execution_count < 16
        assert sum(k * v for k, v in stats.executions_by_batch_size.items()) == \
            stats.inference_count
        for i, out in enumerate(inferred):
            np.testing.assert_allclose(out.reshape(1, 1, 28, 28), direct_from_file(feed(i)),
                                       atol=1e-6)
        # Same seed, same bytes, whichever batch a request happened to join.
        alone = [bytes(client.generate(MODEL, {"digit": i % 10}, seed=i).artifacts[0].data)
                 for i in range(8)]
        assert alone == generated
        meta = stub.ServerMetadata(oip.ServerMetadataRequest())
        assert "statistics" in meta.extensions
        [oip_stats] = stub.ModelStatistics(oip.ModelStatisticsRequest(name=MODEL)).model_stats
        assert oip_stats.inference_stats.success.count == stats.request_count + 8
        assert oip_stats.execution_count >= stats.execution_count


def direct_from_file(inputs: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(served_version(MODELS_DIR) / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["image"], inputs)[0])


def texture_runtime(**options: object) -> Runtime:
    from museforge.plugins.image.texture import MODEL as TEXTURE
    from museforge.plugins.image.texture import MODELS_DIR as TEXTURE_DIR

    rt = Runtime(RuntimeOptions(**options))
    assert rt.load(ModelSource(TEXTURE, TEXTURE_DIR)).ready
    return rt


def texture_feed(seed: int, cells: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"noise": rng.standard_normal((1, 32, cells, cells)).astype(np.float32),
            "family": np.array([seed % 3], np.int64)}


def test_requests_of_different_sizes_are_never_stacked() -> None:
    # Two texture sizes in one queue window: each must come back right, none may fail
    # because the batcher tried to concatenate a 4x4 noise field with a 6x6 one.
    rt = texture_runtime(max_queue_delay_us=300_000)
    try:
        feeds = [texture_feed(i, 4 if i % 2 else 6) for i in range(6)]
        futures = [rt.submit("image.texture", f) for f in feeds]
        session = rt.models["image.texture"].session
        assert session is not None
        for f, future in zip(feeds, futures, strict=True):
            np.testing.assert_allclose(future.result(60)["image"], session.run(["image"], f)[0],
                                       atol=1e-5)
        stats = rt.models["image.texture"].stats.snapshot()
        assert stats.success.count == 6 and stats.fail.count == 0
        assert stats.execution_count < 6, "same-size requests were still merged"
    finally:
        rt.close()


def test_big_requests_are_run_alone() -> None:
    # 64x64 noise cells are 512 KiB of input: already a full run's work on this CPU.
    rt = texture_runtime(max_queue_delay_us=300_000)
    try:
        futures = [rt.submit("image.texture", texture_feed(i, 64)) for i in range(2)]
        for future in futures:
            assert future.result(120)["image"].shape == (1, 1, 1024, 1024)
        assert rt.models["image.texture"].stats.snapshot().execution_count == 2
    finally:
        rt.close()


def test_without_a_queue_delay_a_lone_request_runs_at_once_and_a_crowd_still_merges() -> None:
    rt = runtime(max_queue_delay_us=0)
    batcher = rt.models[MODEL].batcher
    assert batcher is not None
    try:
        # Nothing in flight and a caller that may block: run in its thread, done on return.
        lone = rt.submit(MODEL, feed(0), inline=True)
        assert lone.done()
        np.testing.assert_allclose(lone.result()["image"], direct(rt, feed(0)), atol=1e-6)
        # Something in flight: later requests queue behind it and share runs.
        release = threading.Event()
        original = batcher.run

        def held(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            release.wait(30)
            return original(inputs)

        batcher.run = held
        first = threading.Thread(target=rt.infer, args=(MODEL, feed(1)))
        first.start()
        while batcher._busy == 0:  # the first call is running (and held)
            threading.Event().wait(0.001)
        queued = [rt.submit(MODEL, feed(i)) for i in range(2, 8)]
        assert not any(f.done() for f in queued)
        release.set()
        first.join(30)
        for i, future in zip(range(2, 8), queued, strict=True):
            np.testing.assert_allclose(future.result(30)["image"], direct(rt, feed(i)), atol=1e-6)
        assert max(rt.models[MODEL].stats.snapshot().batches) > 1, "queued requests were merged"
        assert batcher._busy == 0
    finally:
        rt.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(feed(0), inline=True)


def test_the_event_loop_never_runs_a_session_itself() -> None:
    rt = runtime(max_queue_delay_us=0)
    batcher = rt.models[MODEL].batcher
    assert batcher is not None
    threads: list[str] = []
    original = batcher.run

    def recorded(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        threads.append(threading.current_thread().name)
        return original(inputs)

    batcher.run = recorded

    async def call() -> dict[str, np.ndarray]:
        with ThreadPoolExecutor(1) as pool:
            return await rt.infer_async(MODEL, feed(0), pool)

    try:
        out = asyncio.run(call())
        np.testing.assert_allclose(out["image"], direct(rt, feed(0)), atol=1e-6)
        assert threads and threads[0].startswith("batcher-"), threads
    finally:
        rt.close()


def test_a_manifest_without_ranges_still_loads_and_a_bad_index_fails_alone(tmp_path: Path) -> None:
    # Written before ranges existed: no "range", "max_input_elements" or "output_axes".
    version = tmp_path / "digits" / "1"
    shutil.copytree(MODELS_DIR / "1", version)
    manifest = json.loads((version / "manifest.json").read_text())
    for tensor in manifest["inputs"]:
        tensor.pop("range", None)
    for key in ("max_input_elements", "output_axes"):
        manifest.pop(key, None)
    (version / "manifest.json").write_text(json.dumps(manifest))
    rt = Runtime(RuntimeOptions(max_queue_delay_us=300_000))
    try:
        model = rt.load(ModelSource(MODEL, tmp_path / "digits"))
        assert model.ready and all(s.range is None for s in model.inputs)
        good = [rt.submit(MODEL, feed(i)) for i in range(3)]
        bad = rt.submit(MODEL, {"z": feed(0)["z"], "label": np.array([99], np.int64)})
        assert all(f.result(30)["image"].shape == (1, 1, 28, 28) for f in good)
        with pytest.raises(ModelRefused) as info:
            bad.result(30)
        assert info.value.fields == ("label",)
    finally:
        rt.close()

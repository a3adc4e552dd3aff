"""Triton's model repository extension: the index, hot reload under load, unload and load again."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import shutil
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from onnx import helper, numpy_helper
from pydantic import BaseModel

import museforge
from museforge.inference import grpc_service_pb2 as pb
from museforge.inference import grpc_service_pb2_grpc as pb_grpc
from museforge.plugins.image.digits import MODELS_DIR
from museforge.runtime.batcher import BatcherClosed, BatchingOptions, DynamicBatcher
from museforge.runtime.repository import LoadRefused
from museforge.runtime.sessions import LoadedModel, Runtime, RuntimeOptions
from museforge.runtime.statistics import ModelStatistics
from museforge.server.guard import scope_of
from tests.servers import ServerThread, inline_engine

MODEL = "test.digits"
CALLERS = 16


class Params(BaseModel):
    pass


def nothing(ctx: museforge.GenerationContext, params: Params, seed: int,
            count: int) -> Iterator[museforge.Media]:
    yield from ()


class DigitsCopy:
    """A throwaway plugin whose only model lives in the test's own directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.digits", "image", Params, nothing, ("png",),
                                     models=(museforge.ModelSource(MODEL, self.directory),)))


def write_version(directory: Path, version: int, model: bytes, sha256: str | None = None,
                  output: str = "image") -> None:
    """Version ``version`` beside the others, with version 1's manifest (digest of ``model``;
    ``output`` names its output, as ``shifted`` does)."""
    target = directory / str(version)
    target.mkdir()
    (target / "model.onnx").write_bytes(model)
    manifest = json.loads((directory / "1" / "manifest.json").read_text("utf-8"))
    manifest.update(version=version, sha256=sha256 or hashlib.sha256(model).hexdigest())
    manifest["outputs"][0]["name"] = output
    (target / "manifest.json").write_text(json.dumps(manifest), "utf-8")


def shifted(directory: Path, output: str = "image") -> bytes:
    """Version 1's graph with 1.0 added to its output (``output`` renames it: a new contract)."""
    graph_model = onnx.load(str(directory / "1" / "model.onnx"))
    graph = graph_model.graph
    last = graph.node[-1]
    last.output[0] = "image_before_shift"
    graph.initializer.append(numpy_helper.from_array(np.array(1.0, np.float32), "shift"))
    graph.node.append(helper.make_node("Add", ["image_before_shift", "shift"], [output]))
    graph.output[0].name = output
    return graph_model.SerializeToString()


@pytest.fixture
def models(tmp_path: Path) -> Path:
    directory = tmp_path / "digits"
    shutil.copytree(MODELS_DIR / "1", directory / "1")  # the tests write the versions after it
    return directory


@pytest.fixture
def served(models: Path) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with ServerThread(engine=inline_engine(("digits_copy", DigitsCopy(models)))) as server, \
            grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def request(digit: int) -> pb.ModelInferRequest:
    z = np.linspace(-1, 1, 100, dtype=np.float32).reshape(1, 100)
    label = np.array([digit], np.int64)
    return pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[pb.ModelInferRequest.InferInputTensor(name="z", datatype="FP32", shape=[1, 100]),
                pb.ModelInferRequest.InferInputTensor(name="label", datatype="INT64", shape=[1])],
        raw_input_contents=[z.tobytes(), label.tobytes()],
    )


def image(reply: pb.ModelInferResponse) -> np.ndarray:
    return np.frombuffer(reply.raw_output_contents[0], np.float32)


def index(oip: pb_grpc.GRPCInferenceServiceStub, ready: bool = False) -> list[tuple[str, str, str]]:
    reply = oip.RepositoryIndex(pb.RepositoryIndexRequest(ready=ready))
    return [(m.name, m.version, m.state) for m in reply.models]


def load(oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    oip.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=MODEL))


def refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_index_lists_the_model_ready_at_version_1(served: pb_grpc.GRPCInferenceServiceStub) -> None:
    assert index(served) == [(MODEL, "1", "READY")]
    assert index(served, ready=True) == [(MODEL, "1", "READY")]
    assert "model_repository" in served.ServerMetadata(pb.ServerMetadataRequest()).extensions


def test_unknown_model_is_not_found(served: pb_grpc.GRPCInferenceServiceStub) -> None:
    calls: list[Callable[[], object]] = [
        lambda: served.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="test.nope")),
        lambda: served.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="test.nope")),
    ]
    for call in calls:
        error = refused(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND and "test.nope" in str(error.details())


def test_load_parameters_museforge_does_not_serve_are_refused(
        served: pb_grpc.GRPCInferenceServiceStub) -> None:
    error = refused(lambda: served.RepositoryModelLoad(pb.RepositoryModelLoadRequest(
        model_name=MODEL, parameters={"config": pb.ModelRepositoryParameter(string_param="{}")})))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "config" in str(error.details())


def test_repository_methods_need_the_admin_scope() -> None:
    for method in ("RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload"):
        assert scope_of(f"/inference.GRPCInferenceService/{method}") == "admin"


class Callers:
    """``CALLERS`` threads calling ModelInfer without pause; each keeps (version, output) in order."""

    def __init__(self, oip: pb_grpc.GRPCInferenceServiceStub) -> None:
        self.oip = oip
        self.seen: list[list[tuple[str, np.ndarray]]] = [[] for _ in range(CALLERS)]
        self.failures: list[BaseException] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._call, args=(i,), daemon=True) for i in range(CALLERS)]

    def _call(self, i: int) -> None:
        while not self.stop.is_set():
            try:
                reply = self.oip.ModelInfer(request(i % 10), timeout=30)
            except BaseException as exc:
                self.failures.append(exc)
                return
            self.seen[i].append((reply.model_version, image(reply)))

    def __enter__(self) -> Callers:
        for thread in self.threads:
            thread.start()
        self.wait_for_more(1)
        return self

    def wait_for_more(self, count: int) -> None:
        """Until every caller has ``count`` more replies (all of them began after this call)."""
        goal = [len(s) + count + 1 for s in self.seen]
        deadline = time.monotonic() + 60
        while any(len(s) < g for s, g in zip(self.seen, goal, strict=True)) and not self.failures:
            assert time.monotonic() < deadline, "the callers stalled"
            time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_hot_reload_under_load_then_unload_and_load_again(
        served: pb_grpc.GRPCInferenceServiceStub, models: Path) -> None:
    with Callers(served) as callers:
        write_version(models, 2, shifted(models))  # (i) a new version with other outputs
        load(served)
        callers.wait_for_more(3)
        assert index(served) == [(MODEL, "2", "READY")]

        write_version(models, 3, b"not an onnx graph")  # (ii) broken: the load says why
        error = refused(lambda: load(served))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "version 3: model.onnx is not an ONNX model" in str(error.details())
        assert "version 2 keeps serving" in str(error.details())
        shutil.rmtree(models / "3")
        write_version(models, 3, shifted(models), sha256="0" * 64)  # altered after its manifest
        error = refused(lambda: load(served))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "sha256" in str(error.details())
        callers.wait_for_more(3)
        assert index(served) == [(MODEL, "2", "READY")]
    assert callers.failures == []

    for i, seen in enumerate(callers.seen):
        digit_reply = seen
        first_v2 = next(n for n, (version, _) in enumerate(digit_reply) if version == "2")
        assert first_v2 > 0, f"caller {i} never saw version 1"
        assert all(v == "1" for v, _ in digit_reply[:first_v2]), f"caller {i} went back to version 1"
        assert all(v == "2" for v, _ in digit_reply[first_v2:]), f"caller {i} went back to version 1"
        old, new = digit_reply[0][1], digit_reply[-1][1]
        assert all(np.array_equal(out, old) for _, out in digit_reply[:first_v2])  # v1's outputs
        assert all(np.array_equal(out, new) for _, out in digit_reply[first_v2:])  # v2's outputs
        np.testing.assert_allclose(new, old + 1.0, atol=1e-5)

    # (iii) unloaded: a clear UNAVAILABLE, the index says so, loading the broken newest fails
    served.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=MODEL))
    error = refused(lambda: served.ModelInfer(request(1)))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "unloaded; load it with RepositoryModelLoad" in str(error.details())
    assert not served.ModelReady(pb.ModelReadyRequest(name=MODEL)).ready
    assert refused(lambda: served.ModelMetadata(pb.ModelMetadataRequest(name=MODEL))).code() == \
        grpc.StatusCode.UNAVAILABLE
    assert index(served) == [(MODEL, "2", "UNAVAILABLE")] and index(served, ready=True) == []
    assert refused(lambda: load(served)).code() == grpc.StatusCode.FAILED_PRECONDITION
    assert index(served) == [(MODEL, "2", "UNAVAILABLE")]

    shutil.rmtree(models / "3")
    load(served)
    assert index(served, ready=True) == [(MODEL, "2", "READY")]
    reply = served.ModelInfer(request(1))
    assert reply.model_version == "2" and np.array_equal(image(reply), callers.seen[1][-1][1])


def test_reload_refuses_a_new_contract_and_frees_the_old_session(models: Path) -> None:
    runtime = Runtime(RuntimeOptions(providers=("CPUExecutionProvider",)))
    try:
        first = runtime.load(museforge.ModelSource(MODEL, models))
        inputs = {"z": np.zeros((1, 100), np.float32), "label": np.zeros(1, np.int64)}
        before = runtime.infer(MODEL, inputs)["image"]

        write_version(models, 2, shifted(models, output="picture"), output="picture")
        with pytest.raises(LoadRefused, match=r"changes the inputs or outputs.*version 1 keeps serving"):
            runtime.repository.load(MODEL)
        assert runtime.models[MODEL] is first
        np.testing.assert_array_equal(runtime.infer(MODEL, inputs)["image"], before)

        shutil.rmtree(models / "2")
        write_version(models, 2, shifted(models))
        old_session = weakref.ref(first.session) if first.session is not None else None
        old_batcher = first.batcher
        del first
        runtime.repository.load(MODEL)
        np.testing.assert_allclose(runtime.infer(MODEL, inputs)["image"], before + 1.0, atol=1e-5)
        assert old_batcher is None or old_batcher.join(10)  # drained, then its workers stopped
        del old_batcher
        gc.collect()
        assert old_session is not None and old_session() is None  # nothing holds the old session
    finally:
        runtime.close()


def test_a_closed_batcher_finishes_what_it_admitted_and_refuses_the_rest() -> None:
    release = threading.Event()

    def slow(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        release.wait(10)
        return {"y": feed["x"] * 2}

    batcher = DynamicBatcher("slow", slow, BatchingOptions(max_batch_size=1), ModelStatistics())
    futures = [batcher.submit({"x": np.full((1, 1), i, np.float32)}) for i in range(4)]
    batcher.close()
    with pytest.raises(BatcherClosed):
        batcher.submit({"x": np.zeros((1, 1), np.float32)})
    assert not batcher.join(0.05)  # still running what it admitted
    release.set()
    assert [float(f.result(10)["y"][0, 0]) for f in futures] == [0.0, 2.0, 4.0, 6.0]
    assert batcher.join(10)


def test_a_request_holding_a_retired_model_is_told_to_look_again(models: Path) -> None:
    runtime = Runtime(RuntimeOptions(providers=("CPUExecutionProvider",)))
    try:
        stale = runtime.load(museforge.ModelSource(MODEL, models))
        write_version(models, 2, shifted(models))
        runtime.repository.load(MODEL)
        inputs = {"z": np.zeros((1, 100), np.float32), "label": np.zeros(1, np.int64)}

        async def infer(model: LoadedModel | None) -> dict[str, np.ndarray]:
            with ThreadPoolExecutor(1) as executor:
                return await runtime.infer_async(MODEL, inputs, executor, model=model)

        with pytest.raises(BatcherClosed):  # the caller (ModelInfer) asks again, for the current one
            asyncio.run(infer(stale))
        assert asyncio.run(infer(None))["image"].shape == (1, 1, 28, 28)
    finally:
        runtime.close()


def test_health_follows_unload_and_load(models: Path) -> None:
    with ServerThread(engine=inline_engine(("digits_copy", DigitsCopy(models)))) as server, \
            grpc.insecure_channel(server.address) as channel:
        oip, health = pb_grpc.GRPCInferenceServiceStub(channel), health_pb2_grpc.HealthStub(channel)

        def status() -> int:
            return health.Check(health_pb2.HealthCheckRequest(service=f"museforge.model/{MODEL}")).status

        assert status() == health_pb2.HealthCheckResponse.SERVING
        oip.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=MODEL))
        assert status() == health_pb2.HealthCheckResponse.NOT_SERVING
        load(oip)
        assert status() == health_pb2.HealthCheckResponse.SERVING


def test_generating_while_the_model_is_unloaded_is_unavailable_never_internal() -> None:
    # A generator's run that finds its model unloaded mid-request is the server's state, not the
    # plugin's fault: UNAVAILABLE, which clients retry, never INTERNAL with a traceback.
    from museforge.client import Client
    from museforge.config import Settings

    codes: list[grpc.StatusCode] = []
    done = threading.Event()
    with ServerThread(Settings(address="127.0.0.1:0", plugins=["image"])) as server:
        def call() -> None:
            with Client(server.address, timeout=60) as client:
                while not done.is_set():
                    try:
                        client.generate("image.digits", {}, count=4)
                        codes.append(grpc.StatusCode.OK)
                    except grpc.RpcError as exc:
                        codes.append(exc.code())

        callers = [threading.Thread(target=call) for _ in range(6)]
        for caller in callers:
            caller.start()
        with Client(server.address, timeout=60) as admin:
            for _ in range(60):
                admin.unload_model("image.digits")
                time.sleep(0.02)
                admin.load_model("image.digits")
                time.sleep(0.02)
        done.set()
        for caller in callers:
            caller.join(60)
    assert grpc.StatusCode.INTERNAL not in codes
    assert {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE} >= set(codes) and grpc.StatusCode.OK in codes


@pytest.mark.parametrize(("change", "said"), [
    (lambda m: m.update(max_batch_size=-5), "max_batch_size: Input should be greater than or equal to 0"),
    (lambda m: m.update(max_batch_size=10**12), "max_batch_size: Input should be less than or equal to"),
    (lambda m: m["inputs"][1].update(range=[5, 1]), "range of label: [5, 1] runs from high to low"),
    (lambda m: m["inputs"][1].update(dtype="float32"), "input label is float32 in manifest.json, int64"),
    (lambda m: m["inputs"][0].update(shape=["batch", 99]),
     "input z has shape ['batch', 99] in manifest.json"),
    (lambda m: m["outputs"][0].update(name="picture"), "outputs ['picture'] in manifest.json, ['image']"),
    (lambda m: m.pop("inputs"), "manifest.json is not valid: inputs: Field required"),
])
def test_a_manifest_that_does_not_describe_its_graph_is_refused_and_the_old_version_serves(
        models: Path, change: Callable[[dict[str, Any]], object], said: str) -> None:
    runtime = Runtime(RuntimeOptions(providers=("CPUExecutionProvider",)))
    try:
        first = runtime.load(museforge.ModelSource(MODEL, models))
        data = (models / "1" / "model.onnx").read_bytes()
        write_version(models, 2, data)
        manifest = json.loads((models / "2" / "manifest.json").read_text("utf-8"))
        change(manifest)
        (models / "2" / "manifest.json").write_text(json.dumps(manifest), "utf-8")
        with pytest.raises(LoadRefused) as refused:
            runtime.repository.load(MODEL)
        assert said in str(refused.value) and "version 1 keeps serving" in str(refused.value)
        assert "\n" not in str(refused.value) and "pydantic.dev" not in str(refused.value)
        assert runtime.models[MODEL] is first
    finally:
        runtime.close()

"""Several versions of one model served at once: Triton's version policy, and requests naming one."""

from __future__ import annotations

import gc
import shutil
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from museforge.config import ModelSettings
from museforge.inference import grpc_service_pb2 as pb
from museforge.inference import grpc_service_pb2_grpc as pb_grpc
from museforge.plugins.image.digits import MODELS_DIR
from museforge.runtime.versions import VersionPolicy
from tests.core.test_model_repository import (
    MODEL,
    DigitsCopy,
    image,
    index,
    load,
    refused,
    request,
    shifted,
    write_version,
)
from tests.servers import ServerThread, inline_engine


@pytest.mark.parametrize(("text", "available", "chosen"), [
    ("latest", [1, 2, 3], [3]),
    ("latest:2", [1, 2, 3], [2, 3]),
    (" LATEST : 5 ", [1, 3], [1, 3]),
    ("all", [3, 1, 2], [1, 2, 3]),
    ("specific:3,1", [1, 2, 3], [1, 3]),
])
def test_a_policy_chooses_versions_as_triton_does(text: str, available: list[int], chosen: list[int]) -> None:
    assert VersionPolicy.parse(text).select(available) == chosen


@pytest.mark.parametrize(("text", "message"), [
    ("newest", "is not one of"),
    ("latest:0", "latest:N needs N: '0'"),
    ("latest:two", "'two' is not a whole number"),
    ("specific:", "is not one of"),
    ("specific:1,x", "'x' is not a whole number"),
    ("all:2", "is not one of"),
])
def test_a_malformed_policy_is_refused_with_the_syntax(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VersionPolicy.parse(text)
    with pytest.raises(ValueError, match="version_policy"):
        ModelSettings(version_policy=text)


def test_a_specific_version_missing_from_disk_is_named() -> None:
    with pytest.raises(ValueError, match=r"version\(s\) 4, which are not in the directory \(it has 1, 2\)"):
        VersionPolicy.parse("specific:2,4").select([1, 2])


def serve(models: Path, policy: str) -> ServerThread:
    engine = inline_engine(("digits_copy", DigitsCopy(models)), models={MODEL: {"version_policy": policy}})
    return ServerThread(engine=engine)


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    models = tmp_path / "digits"
    shutil.copytree(MODELS_DIR / "1", models / "1")  # the tests write the versions after it
    write_version(models, 2, shifted(models))  # version 2 answers version 1's image + 1.0
    return models


@pytest.fixture
def both(two_versions: Path) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with serve(two_versions, "all") as server, grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def infer(oip: pb_grpc.GRPCInferenceServiceStub, version: str = "") -> tuple[str, np.ndarray]:
    call = request(3)
    call.model_version = version
    reply = oip.ModelInfer(call)
    return reply.model_version, image(reply)


def test_policy_all_serves_every_version_and_a_request_picks_one(
        both: pb_grpc.GRPCInferenceServiceStub) -> None:
    (v1, one), (v2, two), (default, unnamed) = infer(both, "1"), infer(both, "2"), infer(both)
    assert (v1, v2, default) == ("1", "2", "2")  # no version named: the highest serving
    np.testing.assert_allclose(two, one + 1.0, atol=1e-6)
    np.testing.assert_array_equal(unnamed, two)
    assert index(both) == [(MODEL, "1", "READY"), (MODEL, "2", "READY")]
    assert list(both.ModelMetadata(pb.ModelMetadataRequest(name=MODEL)).versions) == ["1", "2"]
    for version in ("1", "2"):
        assert both.ModelReady(pb.ModelReadyRequest(name=MODEL, version=version)).ready
        assert both.ModelMetadata(pb.ModelMetadataRequest(name=MODEL, version=version)).name == MODEL
    assert not both.ModelReady(pb.ModelReadyRequest(name=MODEL, version="3")).ready
    stats = both.ModelStatistics(pb.ModelStatisticsRequest(name=MODEL)).model_stats
    assert [(s.version, s.inference_count) for s in stats] == [("1", 1), ("2", 2)]
    only = both.ModelStatistics(pb.ModelStatisticsRequest(name=MODEL, version="1")).model_stats
    assert [s.version for s in only] == ["1"]


def test_a_version_the_policy_does_not_serve_is_not_found_with_what_is(two_versions: Path) -> None:
    with serve(two_versions, "latest") as server, grpc.insecure_channel(server.address) as channel:
        oip = pb_grpc.GRPCInferenceServiceStub(channel)
        assert infer(oip)[0] == "2"
        error = refused(lambda: infer(oip, "1"))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "not serving version '1'; it serves 2 (version policy latest)" in str(error.details())
        assert refused(lambda: infer(oip, "x")).code() == grpc.StatusCode.NOT_FOUND
        assert index(oip) == [(MODEL, "2", "READY")]


def test_a_specific_policy_pins_an_older_version_for_generators_too(two_versions: Path) -> None:
    with serve(two_versions, "specific:1") as server, grpc.insecure_channel(server.address) as channel:
        oip = pb_grpc.GRPCInferenceServiceStub(channel)
        assert infer(oip)[0] == "1"
        assert server.engine is not None and server.engine.runtime.get(MODEL).version == 1  # generators' pick


@pytest.mark.parametrize(("policy", "said"), [
    ("all", "all {\n}"), ("latest:2", "latest {\n  num_versions: 2\n}"),
    ("specific:1", "specific {\n  versions: 1\n}"), ("latest", "latest {\n  num_versions: 1\n}")])
def test_model_config_says_the_version_policy(two_versions: Path, policy: str, said: str) -> None:
    """Triton's ModelConfig carries it; it was left empty, so a Triton client assumed latest: 1."""
    with serve(two_versions, policy) as server, grpc.insecure_channel(server.address) as channel:
        oip = pb_grpc.GRPCInferenceServiceStub(channel)
        config = oip.ModelConfig(pb.ModelConfigRequest(name=MODEL)).config
    assert str(config.version_policy).strip() == said


def test_reload_with_a_new_version_keeps_the_policy_window(both: pb_grpc.GRPCInferenceServiceStub,
                                                            two_versions: Path) -> None:
    write_version(two_versions, 3, shifted(two_versions))
    load(both)
    assert [v for _, v, _ in index(both)] == ["1", "2", "3"]
    assert infer(both)[0] == "3" and infer(both, "1")[0] == "1"


def test_a_broken_version_refuses_the_load_and_every_version_keeps_serving(
        both: pb_grpc.GRPCInferenceServiceStub, two_versions: Path) -> None:
    write_version(two_versions, 3, b"not an onnx graph")
    error = refused(lambda: load(both))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 3: model.onnx is not an ONNX model" in str(error.details())
    assert "versions 1, 2 keep serving" in str(error.details())
    assert [v for _, v, _ in index(both)] == ["1", "2"]
    assert infer(both, "1")[0] == "1" and infer(both)[0] == "2"


def test_a_reload_frees_every_old_version_at_once(two_versions: Path) -> None:
    with serve(two_versions, "all") as server, grpc.insecure_channel(server.address) as channel:
        oip = pb_grpc.GRPCInferenceServiceStub(channel)
        infer(oip, "1"), infer(oip)  # each version's request plan now holds its session
        assert server.engine is not None
        old = [weakref.ref(m.session) for m in server.engine.runtime.serving(MODEL).values()]
        load(oip)  # rebuilds versions 1 and 2
        for _ in range(100):  # the retired batchers' threads let go as they stop
            gc.collect()
            if all(ref() is None for ref in old):
                break
            time.sleep(0.05)
        assert all(ref() is None for ref in old), "a retired session is still referenced"
        assert infer(oip, "1")[0] == "1"

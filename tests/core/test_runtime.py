"""ONNX Runtime sessions: provider choice, options, warm-up and the sha256 check."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from pydantic import BaseModel

import museforge
from museforge.client import Client
from museforge.engine.generator import ModelSource
from museforge.plugins.image.digits import MODELS_DIR
from museforge.runtime import providers
from museforge.runtime.manifest import IntegrityError, verify
from museforge.runtime.sessions import ModelOverrides, Runtime, RuntimeOptions
from tests.models import served_version
from tests.servers import ServerThread, inline_engine


def test_cpu_is_always_last_and_cuda_needs_a_driver(caplog: pytest.LogCaptureFixture) -> None:
    providers._warned.clear()
    with caplog.at_level(logging.WARNING, logger="museforge.runtime"):
        first = providers.resolve(["CUDAExecutionProvider", "CPUExecutionProvider"])
        second = providers.resolve(["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert first == second and first[-1] == "CPUExecutionProvider"
    if not providers.cuda_driver_present():
        assert first == ["CPUExecutionProvider"]
        warnings = [r for r in caplog.records if "CUDA" in r.getMessage()]
        assert len(warnings) == 1, "exactly one warning, not a wall of logs"


def test_unknown_provider_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="museforge.runtime"):
        chosen = providers.resolve(["NoSuchExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"]
    assert any("NoSuchExecutionProvider" in r.getMessage() for r in caplog.records)


def test_session_options_come_from_settings() -> None:
    runtime = Runtime(RuntimeOptions(intra_op_threads=1, inter_op_threads=1,
                                     graph_optimization="basic"))
    options = runtime.session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    with pytest.raises(ValueError, match="graph_optimization"):
        Runtime(RuntimeOptions(graph_optimization="turbo")).session_options()


def test_a_model_runs_on_the_threads_its_source_asks_for_unless_configured() -> None:
    source = ModelSource("image.digits", MODELS_DIR, intra_op_threads=1)
    asked = Runtime(RuntimeOptions(intra_op_threads=2)).load(source)
    assert asked.session is not None and asked.session.get_session_options().intra_op_num_threads == 1
    configured = Runtime(RuntimeOptions(intra_op_threads=2, overrides={
        "image.digits": ModelOverrides(intra_op_threads=3)})).load(source)
    assert configured.session is not None
    assert configured.session.get_session_options().intra_op_num_threads == 3
    server_wide = Runtime(RuntimeOptions(intra_op_threads=2)).load(ModelSource("image.digits", MODELS_DIR))
    assert server_wide.session is not None
    assert server_wide.session.get_session_options().intra_op_num_threads == 2
    reloaded = Runtime(RuntimeOptions(intra_op_threads=2))
    reloaded.load(source)
    assert reloaded.repository.load("image.digits").threads == 1  # a reload keeps what the source asked


def test_model_loads_once_and_reports_provider() -> None:
    runtime = Runtime()
    source = ModelSource("image.digits", MODELS_DIR)
    model = runtime.load(source)
    assert runtime.load(source) is model
    assert model.ready and model.provider == "CPUExecutionProvider"
    assert model.version == int(served_version(MODELS_DIR).name)
    out = runtime.infer("image.digits", {"z": np.zeros((3, 100), np.float32),
                                          "label": np.zeros(3, np.int64)})
    assert out["image"].shape == (3, 1, 28, 28)


def tampered_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "digits"
    shutil.copytree(MODELS_DIR / "1", copy / "1")
    model = copy / "1" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    return copy


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    copy = tampered_copy(tmp_path)
    with pytest.raises(IntegrityError, match="sha256"):
        verify(copy / "1")
    model = Runtime().load(ModelSource("tampered", copy))
    assert not model.ready and "does not match the manifest" in model.error


class NoParams(BaseModel):
    pass


def uses_model(ctx: museforge.GenerationContext, params: NoParams, seed: int,
               count: int) -> Iterator[museforge.Media]:
    ctx.infer("tampered", {})
    yield museforge.Media("image", [[0.0]], 0)


def simple(ctx: museforge.GenerationContext, params: NoParams, seed: int,
           count: int) -> Iterator[museforge.Media]:
    yield museforge.Media("image", [[1.0]], 0)


def test_server_starts_with_a_tampered_model_and_reports_it(tmp_path: Path) -> None:
    copy = tampered_copy(tmp_path)

    class Plugin:
        @museforge.hookimpl
        def register_generators(self, register: Callable[[Any], None]) -> None:
            register(museforge.Generator("test.tampered", "image", NoParams, uses_model, ("png",),
                                         models=(ModelSource("tampered", copy),)))
            register(museforge.Generator("test.simple", "image", NoParams, simple, ("png",)))

    with ServerThread(engine=inline_engine(("p", Plugin()))) as server, \
            Client(server.address) as client:
        infos = {g.name: g for g in client.generators()}
        assert not infos["test.tampered"].available
        assert "sha256" in infos["test.tampered"].models[0].error
        assert client.health("museforge.model/tampered") == "NOT_SERVING"
        with pytest.raises(grpc.RpcError) as info:
            client.generate("test.tampered")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert len(client.generate("test.simple").artifacts) == 1


def _rss_mb() -> float:
    # glibc keeps freed heap pages for reuse, more or less of them depending on what the process
    # (a test worker) ran before; trimming first measures what is still allocated. Memory an ORT
    # arena holds is allocated, so trimming does not hide it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_an_outsized_run_hands_its_memory_back() -> None:
    # A 1024-px texture needs ~500 MB of activations; the usual 64-px one a few MB.
    from museforge.plugins.image.texture import MODEL, MODELS_DIR

    rt = Runtime(RuntimeOptions(batching=False))
    assert rt.load(ModelSource(MODEL, MODELS_DIR)).ready
    family = np.zeros(1, np.int64)
    small = {"noise": np.ones((1, 32, 4, 4), np.float32), "family": family}
    for _ in range(3):
        rt.infer(MODEL, small)
    before = _rss_mb()
    big = rt.infer(MODEL, {"noise": np.ones((1, 32, 64, 64), np.float32), "family": family})
    assert big["image"].shape == (1, 1, 1024, 1024)
    del big
    grown = _rss_mb() - before
    # Kept, ORT's arena would hold on to ~500 MB here.
    assert grown < 150, f"RSS grew by {grown:.0f} MB and stayed"
    rt.infer(MODEL, small)  # the arena still works after shrinking


def test_arena_policy_shrinks_outliers_only() -> None:
    from museforge.runtime.arena import ArenaPolicy

    policy = ArenaPolicy(factor=4.0, floor_bytes=1000)
    assert policy.run_options(100) is None  # below the floor
    assert policy.run_options(10_000) is not None  # far above anything seen
    for _ in range(40):
        policy.run_options(10_000)
    assert policy.run_options(10_000) is None  # now the usual size: the arena stays warm
    assert policy.run_options(100_000) is not None
    # A burst of big runs (one request's items) is shrunk after every one of them, the last too.
    burst = ArenaPolicy(factor=4.0, floor_bytes=1000)
    for _ in range(20):
        burst.run_options(2_000)
    assert all(burst.run_options(64_000) is not None for _ in range(4))

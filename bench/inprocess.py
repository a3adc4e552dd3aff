"""In-process references: PyTorch eager, raw ONNX Runtime, and the generate pipeline split.

Each runs in a fresh ``spawn`` child (see ``in_child``) so torch's and ORT's thread
pools never linger in the process that later drives the servers.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, TypeVar

from .discover import TORCH_ARCHITECTURES, GeneratorInfo, ModelInfo, make_feed
from .timing import Measurement, timed_loop

T = TypeVar("T")


def in_child(fn: Callable[..., T], *args: Any, timeout: float = 600) -> T:
    """Run ``fn(*args)`` in a fresh spawned process and return its result."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result(timeout=timeout)


@dataclass
class Sweep:
    """Short measurements over batch sizes, then full-length ones of the batches that matter."""

    sweep: dict[int, Measurement] = field(default_factory=dict)
    full: dict[int, Measurement] = field(default_factory=dict)
    best: int = 1
    note: str = ""  # why there is no result (e.g. torch missing)


def _sweep(run_batch: Callable[[int], Callable[[], object]], batches: list[int], extra: list[int],
           warmup_s: float, sweep_s: float, duration_s: float) -> Sweep:
    result = Sweep()
    for batch in batches:
        result.sweep[batch] = timed_loop(run_batch(batch), batch, min(warmup_s, 0.2), sweep_s)
    result.best = max(result.sweep, key=lambda b: result.sweep[b].items_per_s)
    for batch in sorted({batches[0], result.best, *extra}):
        result.full[batch] = timed_loop(run_batch(batch), batch, warmup_s, duration_s)
    # Short sweep points are noisy: the best is the best of the full-length measurements.
    result.best = max(result.full, key=lambda b: result.full[b].items_per_s)
    return result


def ort_sweep(model: ModelInfo, batches: list[int], extra: list[int], warmup_s: float,
              sweep_s: float, duration_s: float) -> Sweep:
    """Raw ``onnxruntime.InferenceSession`` on the CPU provider, default threads: the limit."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])

    def run_batch(batch: int) -> Callable[[], object]:
        feed = make_feed(model.inputs, batch, axis=model.axis)
        return lambda: session.run(None, feed)

    return _sweep(run_batch, batches, extra, warmup_s, sweep_s, duration_s)


def torch_sweep(model: ModelInfo, batches: list[int], warmup_s: float, sweep_s: float,
                duration_s: float) -> Sweep:
    """PyTorch eager with random weights (compute cost does not depend on their values)."""
    target = TORCH_ARCHITECTURES.get(model.name)
    if target is None:
        return Sweep(note="no torch architecture known")
    if importlib.util.find_spec("torch") is None:
        return Sweep(note="torch not installed")
    import torch

    module_name, _, attr = target.partition(":")
    torch.manual_seed(0)
    net = getattr(importlib.import_module(module_name), attr)().eval()

    def run_batch(batch: int) -> Callable[[], object]:
        feed = [torch.from_numpy(a) for a in make_feed(model.inputs, batch, axis=model.axis).values()]

        def call() -> object:
            with torch.inference_mode():
                return net(*feed)

        return call

    return _sweep(run_batch, batches, [], warmup_s, sweep_s, duration_s)


@dataclass
class GenerateSplit:
    """One generator request run in-process (no gRPC), timed per stage, in images per second."""

    count: int
    pipeline: Measurement  # generate + encode, as the server does per request
    generate_s: float  # seconds in the generator (model runs + post-processing), per request
    encode_s: float  # seconds in the output encoder (PNG with provenance), per request
    executions: dict[int, int]  # session runs per batch size, per request


def generate_split(generator: GeneratorInfo, params: dict[str, object], count: int,
                   warmup_s: float, duration_s: float) -> GenerateSplit:
    """Time one request's stages with the real Engine, generator and encoder."""
    from museforge.config import Settings
    from museforge.engine.catalogue import Engine, GenerationState
    from museforge.engine.generator import Media

    logging.getLogger("museforge").setLevel(logging.ERROR)
    # Batching off: a lone request gains nothing from the batcher's queue delay.
    engine = Engine(Settings(batching=False, max_count=max(count, 1))).start()
    request = engine.prepare(generator.name, dict(params), 1234, count, "")
    spent = {"generate": 0, "encode": 0}

    def once() -> object:
        state = GenerationState(engine.runtime, frozenset(generator.models))
        t0 = time.perf_counter_ns()
        media = [e for e in request.generator.generate(state, request.params, request.seed, count)
                 if isinstance(e, Media)]
        t1 = time.perf_counter_ns()
        blobs = [request.encoder.encode(m, engine.provenance(request, m)) for m in media]
        spent["generate"] += t1 - t0
        spent["encode"] += time.perf_counter_ns() - t1
        return blobs

    once()
    before = {n: _executions(engine, n) for n in generator.models}
    spent.update(generate=0, encode=0)
    pipeline = timed_loop(once, count, 0.0, max(duration_s, 0.05))
    calls = pipeline.calls + 1  # timed_loop makes one untimed call first
    executions: dict[int, int] = {}
    for name in generator.models:
        after = _executions(engine, name)
        for size, n in after.items():
            per_call = (n - before[name].get(size, 0)) / calls
            if per_call:
                executions[size] = round(per_call)
    engine.close()
    return GenerateSplit(count, pipeline, spent["generate"] / 1e9 / calls,
                         spent["encode"] / 1e9 / calls, executions)


def _executions(engine: Any, model: str) -> dict[int, int]:
    snapshot = engine.runtime.models[model].stats.snapshot()
    return {size: figures.compute_infer.count for size, figures in snapshot.batches.items()}


def ort_seconds(sweep: Sweep, batch: int) -> float | None:
    """Seconds per call of raw ORT at ``batch`` (for 'same work' comparisons)."""
    m = sweep.full.get(batch) or sweep.sweep.get(batch)
    return batch / m.items_per_s if m and m.items_per_s else None


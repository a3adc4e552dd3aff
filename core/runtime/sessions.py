"""ONNX Runtime sessions: one per model, verified, created once, warmed up, reported."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from . import providers
from .arena import ArenaPolicy
from .batcher import BatcherClosed, BatchingOptions, DynamicBatcher, RunFn
from .manifest import Manifest, ManifestMismatch, VersionFailed, verify
from .model_checks import (
    ORT_TO_NUMPY,
    InputError,
    ModelRefused,
    TensorSpec,
    check_range,
    contract_problems,
    output_bytes,
    specs,
)
from .model_layout import ModelMissing, chosen_versions, declared_apart
from .model_source import ModelSource
from .options import ModelOverrides, RuntimeOptions
from .repository import ModelRepository
from .versions import VersionPolicy

__all__ = ["ORT_TO_NUMPY", "InputError", "LoadedModel", "ModelMissing", "ModelNotReady", "ModelOverrides",
           "ModelRefused", "Runtime", "RuntimeOptions", "TensorSpec", "VersionFailed"]
from .session_run import session_runner
from .statistics import ModelStatistics
from .stop import StopSignal

log = logging.getLogger("museforge.runtime")

OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass
class LoadedModel:
    """A model the runtime knows of, ready or not (``error`` says why not)."""

    name: str
    directory: Path
    version: int = 0
    manifest: Manifest | None = None
    session: ort.InferenceSession | None = None
    provider: str = ""
    error: str = ""
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    stats: ModelStatistics = field(default_factory=ModelStatistics)
    batching: BatchingOptions | None = None  # None: not batchable, or batching turned off
    max_batch_size: int = 0  # 0: the model has no batch axis
    batcher: DynamicBatcher | None = None
    arena: ArenaPolicy = field(default_factory=ArenaPolicy)
    pinned: int | None = None  # the version its source names (None: the newest)
    threads: int | None = None  # intra-op threads its source asks for (None: the server's)

    @property
    def ready(self) -> bool:
        return self.session is not None

    @property
    def sha256(self) -> str:
        return self.manifest.sha256 if self.manifest else ""

    def retire(self) -> None:
        """Take no new request; those already admitted finish (the batcher drains first)."""
        if self.batcher is not None:
            self.batcher.close()

    def unavailable(self, reason: str) -> LoadedModel:
        """The entry that replaces it once unloaded: its name, version and contract, no session."""
        return LoadedModel(name=self.name, directory=self.directory, version=self.version,
                           manifest=self.manifest, error=reason, inputs=self.inputs,
                           outputs=self.outputs, pinned=self.pinned, threads=self.threads)


class ModelNotReady(RuntimeError):
    """The model is unknown or failed to load."""


class Runtime:
    """Owns every ONNX Runtime session of the server."""

    def __init__(self, options: RuntimeOptions | None = None) -> None:
        self.options = options or RuntimeOptions()
        # Replaced whole on reload or unload (see repository.py): read an entry once per request.
        self.models: dict[str, LoadedModel] = {}  # the highest version serving, or why none is
        # Every version serving, by number (the policy's choice); replaced whole, as models is.
        self.versions: dict[str, dict[int, LoadedModel]] = {}
        self.repository = ModelRepository(self)
        # Quieten ONNX Runtime's own logger: failures are reported once, by us.
        ort.set_default_logger_severity(3)

    def session_options(self, name: str = "", threads: int | None = None) -> ort.SessionOptions:
        """Options for model ``name``'s sessions: its configured thread count wins over ``threads``
        (what its generator asks for), which wins over the server-wide setting."""
        so = ort.SessionOptions()
        own = self.options.overrides.get(name, ModelOverrides()).intra_op_threads
        so.intra_op_num_threads = own or threads or self.options.intra_op_threads
        so.inter_op_num_threads = self.options.inter_op_threads
        level = self.options.graph_optimization
        if level not in OPTIMIZATION_LEVELS:
            raise ValueError(f"graph_optimization must be one of {sorted(OPTIMIZATION_LEVELS)}")
        so.graph_optimization_level = OPTIMIZATION_LEVELS[level]
        so.log_severity_level = 3
        flag = "1" if self.options.spinning else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", flag)
        so.add_session_config_entry("session.inter_op.allow_spinning", flag)
        return so

    def load(self, source: ModelSource, recipe: str = "") -> LoadedModel:
        """Load (once) the model a generator declared; failures are kept, not raised, saying what
        to do (``recipe``: the one ``museforge export`` writes it with). Raises ValueError for a
        second declaration of the name that differs (the plugin host refuses those first)."""
        existing = self.models.get(source.name)
        if existing is not None:
            mismatch = declared_apart(existing.directory, (existing.pinned, existing.threads), source)
            if mismatch:
                raise ValueError(f"model {source.name!r} is declared twice: {mismatch}")
            return existing
        model = LoadedModel(name=source.name, directory=source.directory, pinned=source.version,
                            threads=source.intra_op_threads)
        self.models[source.name] = model
        try:
            self.serve(source.name, self.build(source.name, source.directory, source.version,
                                               source.intra_op_threads))
        except Exception as exc:
            said = isinstance(exc, (VersionFailed, ModelMissing))
            model.error = str(exc) if said else f"{type(exc).__name__}: {exc}"
            if recipe:
                model.error += f"; `museforge export {recipe}` writes it"
            log.error("model %s cannot serve: %s", source.name, model.error)
        return self.models[source.name]

    def policy(self, name: str, pinned: int | None = None) -> VersionPolicy:
        """The configured policy, else the version a generator pins, else the latest."""
        own = self.options.overrides.get(name, ModelOverrides()).version_policy
        return own or (VersionPolicy.pinned(pinned) if pinned is not None else VersionPolicy())

    def build(self, name: str, directory: Path, pinned: int | None = None,
              threads: int | None = None) -> dict[int, LoadedModel]:
        """Every version the policy serves, verified and warmed up, not yet served; raises what
        stops any of them from serving (naming the version), having freed the others."""
        chosen = chosen_versions(self.policy(name, pinned), directory)
        built: dict[int, LoadedModel] = {}
        for version in reversed(chosen):  # the one generators use first
            model = LoadedModel(name=name, directory=directory, pinned=pinned, threads=threads)
            try:
                self._open(model, directory / str(version))
            except Exception as exc:
                for other in built.values():
                    other.retire()
                raise VersionFailed(version, exc) from exc
            built[version] = model
        return built

    def serve(self, name: str, versions: dict[int, LoadedModel]) -> None:
        """Swap in built versions: new requests take them (two reference assignments)."""
        self.versions[name] = versions
        self.models[name] = versions[max(versions)]

    def serving(self, name: str) -> dict[int, LoadedModel]:
        return self.versions.get(name, {})

    def every_version(self) -> list[LoadedModel]:
        """Each model's serving versions, ascending, or its entry when none serves."""
        found: list[LoadedModel] = []
        for model in list(self.models.values()):
            serving = self.serving(model.name) if model.ready else {}
            found += [serving[v] for v in sorted(serving)] or [model]
        return found

    def _open(self, model: LoadedModel, version_dir: Path) -> None:
        manifest, data = verify(version_dir)
        requested = providers.resolve(self.options.providers)
        session = ort.InferenceSession(
            data, sess_options=self.session_options(model.name, model.threads), providers=requested
        )
        actual = session.get_providers()
        providers.note_fallback(requested, actual)
        model.version = int(version_dir.name)
        model.manifest = manifest
        model.inputs = specs(session.get_inputs(), manifest)
        model.outputs = specs(session.get_outputs())
        problems = contract_problems(manifest, model.inputs, model.outputs)
        if problems:
            raise ManifestMismatch("manifest.json does not describe model.onnx: " + "; ".join(problems))
        if manifest.name != model.name or manifest.version != model.version:
            log.warning("model %s v%d: its manifest.json names %s version %d (copied from another model?)",
                        model.name, model.version, manifest.name, manifest.version)
        if manifest.quick:
            log.warning("model %s v%d is a --quick export (seconds of training, to prove the pipeline); "
                        "not fit to serve", model.name, model.version)
        model.provider = actual[0]
        self.warm_up(session, model.inputs)
        model.session = session
        self._configure_batching(model)
        log.info("model %s v%d ready on %s (max batch %d, batching %s)", model.name,
                 model.version, model.provider, model.max_batch_size,
                 "on" if model.batcher else "off")

    def _configure_batching(self, model: LoadedModel) -> None:
        batchable = all(s.shape and s.shape[0] == -1 for s in (*model.inputs, *model.outputs))
        if not batchable:
            return
        own = self.options.overrides.get(model.name, ModelOverrides())
        declared = model.manifest.max_batch_size if model.manifest else 0
        model.max_batch_size = own.max_batch_size or declared or self.options.default_max_batch_size
        enabled = self.options.batching if own.batching is None else own.batching
        if own.batching is None and model.manifest is not None and model.manifest.batching is False:
            enabled = False  # its rows depend on each other: merged requests would mix
        if not enabled:
            return
        model.batching = BatchingOptions(
            enabled=True,
            max_batch_size=model.max_batch_size,
            max_queue_delay_us=(self.options.max_queue_delay_us if own.max_queue_delay_us is None
                                else own.max_queue_delay_us),
            instances=own.instances or self.options.instances,
            max_queue_size=self.options.max_queue_size,
        )
        model.batcher = DynamicBatcher(model.name, self._runner(model), model.batching,
                                       model.stats)

    @staticmethod
    def _runner(model: LoadedModel) -> RunFn:
        assert model.session is not None
        return session_runner(model.name, model.session, model.inputs, [s.name for s in model.outputs],
                              model.arena)

    @staticmethod
    def warm_up(session: ort.InferenceSession, inputs: tuple[TensorSpec, ...]) -> None:
        # The first run allocates and plans; do it now rather than in a user's request.
        # Dynamic axes start at 1; a spatial model that needs sides divisible by 2^k (a
        # U-Net) refuses that, so larger powers of two are tried before giving up.
        quiet = ort.RunOptions()
        quiet.log_severity_level = 4  # a refused probe size is expected, not an error to log
        for size in (1, 16, 64):
            feed = {s.name: np.zeros([d if d > 0 else (1 if i == 0 else size) for i, d in enumerate(s.shape)],
                                     s.dtype) for s in inputs}
            try:
                session.run(None, feed, quiet)
                return
            except Exception:
                if size == 64:
                    raise

    def get(self, name: str) -> LoadedModel:
        model = self.models.get(name)
        if model is None:
            raise ModelNotReady(f"unknown model {name!r}")
        if model.session is None:
            raise ModelNotReady(f"model {name!r} is not available: {model.error}")
        return model

    def check_inputs(self, model: LoadedModel, inputs: Mapping[str, np.ndarray]) -> int:
        """Validate before queueing, so one bad request never fails its batch neighbours.

        Returns the batch size (0 for models without a batch axis).
        """
        if len(inputs) != len(model.inputs) or not all(spec.name in inputs for spec in model.inputs):
            self._refuse_unknown(model, inputs)  # an unknown name is said before anything else
        sizes = set()
        for spec in model.inputs:
            if spec.name not in inputs:
                raise InputError(spec.name, "missing input")
            array = inputs[spec.name]
            if not isinstance(array, np.ndarray) or array.dtype != spec.dtype:
                got = getattr(array, "dtype", type(array).__name__)
                raise InputError(spec.name, f"must be a {spec.dtype} array, got {got}")
            shape = array.shape
            if len(shape) != len(spec.shape) or (shape != spec.shape and any(
                d >= 0 and d != g for d, g in zip(spec.shape, shape, strict=True)
            )):
                raise InputError(spec.name, f"shape {shape} does not fit {spec.shape}")
            if spec.range is not None:
                check_range(spec.name, array, spec.range)
            if model.max_batch_size:
                sizes.add(array.shape[0])
        if len(sizes) > 1:
            raise InputError("inputs", f"inputs disagree on the batch size: {sorted(sizes)}")
        batch = sizes.pop() if sizes else 0
        if model.max_batch_size and batch > model.max_batch_size:
            raise InputError(model.inputs[0].name,
                             f"batch {batch} exceeds max_batch_size {model.max_batch_size}")
        return batch

    @staticmethod
    def _refuse_unknown(model: LoadedModel, inputs: Mapping[str, np.ndarray]) -> None:
        expected = {spec.name for spec in model.inputs}
        for name in inputs:
            if name not in expected:
                raise InputError(name, f"unknown input; {model.name} takes {sorted(expected)}")

    @staticmethod
    def output_bytes(model: LoadedModel, shapes: Mapping[str, tuple[int, ...]]) -> int | None:
        """What the outputs of inputs of these shapes will weigh (None: cannot tell before running)."""
        rules = model.manifest.output_axes if model.manifest else {}
        return output_bytes(model.inputs, model.outputs, rules, shapes)

    def _run_direct(self, model: LoadedModel, inputs: Mapping[str, np.ndarray],
                    stop: threading.Event | None = None) -> dict[str, np.ndarray]:
        started = time.perf_counter_ns()
        try:
            outputs = self._runner(model)(inputs, (stop,) if stop is not None else ())
        except BaseException:
            model.stats.record_request(ok=False, total_ns=time.perf_counter_ns() - started,
                                       queue_ns=0)
            raise
        done = time.perf_counter_ns()
        batch = len(next(iter(inputs.values()))) if model.max_batch_size else 1
        model.stats.record_execution(batch_size=batch, requests=1, input_ns=0,
                                     infer_ns=done - started, output_ns=0)
        model.stats.record_request(ok=True, total_ns=done - started, queue_ns=0)
        return outputs

    def submit(self, name: str, inputs: Mapping[str, np.ndarray], inline: bool = False,
               stop: threading.Event | None = None) -> Future[dict[str, np.ndarray]]:
        """Validate, then queue for the model's batcher (or run now when it has none).

        ``inline``: the caller may block, so an idle model runs in its thread (see DynamicBatcher).
        ``stop``: the request's cancel flag; a :class:`StopSignal` set while its run goes on
        terminates the run when no other request shares it (RunStopped).
        """
        model = self.get(name)
        self.check_inputs(model, inputs)
        if model.batcher is not None:
            try:
                return model.batcher.submit(inputs, inline, stop)
            except BatcherClosed:  # retired by a reload or unload since ``get``: look again
                return self.submit(name, inputs, inline, stop)
        future: Future[dict[str, np.ndarray]] = Future()
        try:
            future.set_result(self._run_direct(model, inputs, stop))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def infer(self, name: str, inputs: Mapping[str, np.ndarray],
              stop: threading.Event | None = None) -> dict[str, np.ndarray]:
        """Blocking inference (from a worker thread), batched with concurrent callers. A plugin's
        inputs that do not fit say which model (and version) they were for."""
        try:
            return self.submit(name, inputs, inline=True, stop=stop).result()
        except InputError as exc:
            served = self.models.get(name)
            exc.args = (f"model {name}{f' v{served.version}' if served else ''}: {exc}",)
            raise

    async def infer_async(
        self, name: str, inputs: Mapping[str, np.ndarray], executor: Executor, checked: bool = False,
        model: LoadedModel | None = None,
    ) -> dict[str, np.ndarray]:
        """Inference from the event loop, which it never blocks.

        ``checked``: the caller already ran ``check_inputs`` (off the loop, for big tensors).
        ``model``: the entry the caller looked up (and reports the version of); should a reload
        have retired it since, BatcherClosed tells the caller to look again.
        """
        chosen = model if model is not None else self.get(name)
        if not checked:
            self.check_inputs(chosen, inputs)
        if chosen.batcher is not None:
            try:
                waiter = chosen.batcher.submit_async(inputs)
            except BatcherClosed:
                if model is not None:
                    raise
                return await self.infer_async(name, inputs, executor, checked=True)
            return await waiter
        stop = StopSignal()  # the call ended while its run went on: the run stops with it
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, self._run_direct, chosen,
                                                                    inputs, stop)
        except asyncio.CancelledError:
            stop.set()
            raise

    def close(self) -> None:
        for served in self.versions.values():
            for model in served.values():
                model.retire()

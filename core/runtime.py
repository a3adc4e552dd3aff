"""ONNX Runtime sessions: one per model, verified, created once, warmed up, reported."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from . import providers
from .generator import ModelSource
from .manifest import IntegrityError, Manifest, latest_version, verify

log = logging.getLogger("museforge.runtime")

ORT_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}
OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class RuntimeOptions:
    providers: tuple[str, ...] = ("CUDAExecutionProvider", "CPUExecutionProvider")
    intra_op_threads: int = 0  # 0: ONNX Runtime's default (one per physical core)
    inter_op_threads: int = 0
    graph_optimization: str = "all"


@dataclass(frozen=True)
class TensorSpec:
    """A session input or output; -1 marks a dynamic axis."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]


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
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ready(self) -> bool:
        return self.session is not None

    @property
    def sha256(self) -> str:
        return self.manifest.sha256 if self.manifest else ""


class ModelNotReady(RuntimeError):
    """The model is unknown or failed to load."""


def _specs(args: list[ort.NodeArg]) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(
            name=a.name,
            dtype=np.dtype(ORT_TO_NUMPY.get(a.type, np.float32)),
            shape=tuple(d if isinstance(d, int) and d >= 0 else -1 for d in a.shape),
        )
        for a in args
    )


class Runtime:
    """Owns every ONNX Runtime session of the server."""

    def __init__(self, options: RuntimeOptions | None = None) -> None:
        self.options = options or RuntimeOptions()
        self.models: dict[str, LoadedModel] = {}
        # Quieten ONNX Runtime's own logger: failures are reported once, by us.
        ort.set_default_logger_severity(3)

    def session_options(self) -> ort.SessionOptions:
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.options.intra_op_threads
        so.inter_op_num_threads = self.options.inter_op_threads
        level = self.options.graph_optimization
        if level not in OPTIMIZATION_LEVELS:
            raise ValueError(f"graph_optimization must be one of {sorted(OPTIMIZATION_LEVELS)}")
        so.graph_optimization_level = OPTIMIZATION_LEVELS[level]
        so.log_severity_level = 3
        return so

    def load(self, source: ModelSource) -> LoadedModel:
        """Load (once) the model a generator declared; failures are kept, not raised."""
        existing = self.models.get(source.name)
        if existing is not None:
            if existing.directory != source.directory:
                log.error("model %s declared twice with different directories", source.name)
            return existing
        model = LoadedModel(name=source.name, directory=source.directory)
        self.models[source.name] = model
        try:
            self._open(model, source)
        except IntegrityError as exc:
            model.error = str(exc)
            log.error("model %s refused: %s", source.name, exc)
        except Exception as exc:
            model.error = f"{type(exc).__name__}: {exc}"
            log.error("model %s failed to load: %s", source.name, model.error)
        return model

    def _open(self, model: LoadedModel, source: ModelSource) -> None:
        if source.version is not None:
            version_dir = source.directory / str(source.version)
        else:
            version_dir = latest_version(source.directory)
        manifest, data = verify(version_dir)
        requested = providers.resolve(self.options.providers)
        session = ort.InferenceSession(
            data, sess_options=self.session_options(), providers=requested
        )
        actual = session.get_providers()
        providers.note_fallback(requested, actual)
        model.version = int(version_dir.name)
        model.manifest = manifest
        model.inputs = _specs(session.get_inputs())
        model.outputs = _specs(session.get_outputs())
        model.provider = actual[0]
        self._warm_up(session, model.inputs)
        model.session = session
        log.info("model %s v%d ready on %s", model.name, model.version, model.provider)

    @staticmethod
    def _warm_up(session: ort.InferenceSession, inputs: tuple[TensorSpec, ...]) -> None:
        # The first run allocates and plans; do it now rather than in a user's request.
        feed = {s.name: np.zeros([d if d > 0 else 1 for d in s.shape], s.dtype) for s in inputs}
        session.run(None, feed)

    def get(self, name: str) -> LoadedModel:
        model = self.models.get(name)
        if model is None:
            raise ModelNotReady(f"unknown model {name!r}")
        if model.session is None:
            raise ModelNotReady(f"model {name!r} is not available: {model.error}")
        return model

    def infer(self, name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        model = self.get(name)
        assert model.session is not None
        outputs = model.session.run(None, dict(inputs))
        return {spec.name: np.asarray(out) for spec, out in zip(model.outputs, outputs, strict=True)}

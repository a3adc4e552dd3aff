"""Find the shipped models and generators the way the server does, without hard-coding names."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

# The torch architecture behind each ONNX model, for the PyTorch eager rows. A model
# missing here simply gets no PyTorch rows. forward() takes the ONNX inputs in order.
TORCH_ARCHITECTURES = {
    "image.digits": "museforge.plugins.image.digits_gan:DigitsGenerator",
    "image.faces": "museforge.plugins.image.faces_gan:FacesGenerator",
    "image.texture": "museforge.plugins.image.texture_gan:TextureGenerator",
    "image.tiles": "museforge.plugins.image.tiles_gan:TilesGenerator",
    "image.icons": "museforge.plugins.image.icons_gan:IconsGenerator",
}


@dataclass(frozen=True)
class Workload:
    """One Generate request worth measuring for a generator.

    ``axis`` is the size the model's dynamic non-batch axes take for this request (noise
    cells for a spatial model), so the raw-ORT "same work" row runs the same tensors.
    """

    key: str  # row-key suffix: "" for the generator's main workload, e.g. "_1024"
    label: str
    params: dict[str, object]
    count: int | None = None  # images per request; None: --count, capped by the generator
    axis: int = 1


# Requests a user would typically send, for generators whose defaults are not the point
# (a spatial model's cost depends on the size asked for). Others get their defaults.
WORKLOADS: dict[str, tuple[Workload, ...]] = {
    "image.texture": (
        Workload("", "256×256 tileable", {"family": "brick", "width": 256, "height": 256,
                                          "tileable": True}, count=4, axis=256 // 16),
        Workload("_1024", "1024×1024 tileable", {"family": "brick", "width": 1024, "height": 1024,
                                                 "tileable": True}, count=1, axis=1024 // 16),
    ),
    "image.tiles": (
        Workload("", "32×32 tiles", {"kind": "wall"}, axis=4),
        Workload("_sheet", "8×8-tile sheet (256×256)", {"kind": "floor", "columns": 8, "rows": 8},
                 count=1, axis=32),
    ),
}


EFFECT_PICTURE_SIDE = 64  # height and width of the pictures an effect's model is timed on


def workloads(generator: str) -> tuple[Workload, ...]:
    return WORKLOADS.get(generator, (Workload("", "default parameters", {}),))


@dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: str  # numpy dtype name, e.g. "float32"
    shape: tuple[int, ...]  # -1: dynamic axis
    range: tuple[float, float] | None = None  # the values the manifest declares, both ends included


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path  # the model.onnx the server loads
    version: int
    inputs: tuple[InputSpec, ...]
    max_batch_size: int  # 0: no batch axis
    axis: int = 1  # size of dynamic non-batch axes in this model's rows (its main workload's)


@dataclass(frozen=True)
class GeneratorInfo:
    name: str
    models: tuple[str, ...]
    max_count: int | None  # the generator's own cap; None: the server's


@dataclass
class Catalogue:
    models: dict[str, ModelInfo] = field(default_factory=dict)
    generators: dict[str, GeneratorInfo] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # models that failed to load


def discover(only: set[str] | None = None) -> Catalogue:
    """Start an Engine with default settings (all installed plugins) and list what loaded."""
    from museforge.config import Settings
    from museforge.engine.catalogue import Engine

    logging.getLogger("museforge").setLevel(logging.ERROR)
    # Batching off: discovery needs no batcher threads, only the loaded models.
    engine = Engine(Settings(batching=False)).start()
    found = Catalogue()
    try:
        for model in engine.runtime.models.values():
            if only and model.name not in only:
                continue
            if not model.ready:
                found.problems.append(f"{model.name}: {model.error}")
                continue
            found.models[model.name] = ModelInfo(
                name=model.name,
                path=model.directory / str(model.version) / "model.onnx",
                version=model.version,
                inputs=tuple(InputSpec(s.name, np.dtype(s.dtype).name, s.shape, s.range)
                             for s in model.inputs),
                max_batch_size=model.max_batch_size,
            )
        for gen in engine.generators.values():
            main = workloads(gen.name)[0]
            for source in gen.models:
                if source.name in found.models and main.axis != 1:
                    found.models[source.name] = replace(found.models[source.name], axis=main.axis)
        claimed = {source.name for gen in engine.generators.values() for source in gen.models}
        for name, info in found.models.items():
            # An effect's model (denoise, upscale ...) runs on pictures: its free height and width
            # as a small picture's, which every such model takes (some need even sides, so not 1).
            spatial = any(sum(d == -1 for d in spec.shape[1:]) >= 2 for spec in info.inputs)
            if name not in claimed and spatial:
                found.models[name] = replace(info, axis=EFFECT_PICTURE_SIDE)
        for gen in engine.generators.values():
            names = tuple(s.name for s in gen.models)
            if names and all(n in found.models for n in names):
                found.generators[gen.name] = GeneratorInfo(gen.name, names, gen.max_count)
    finally:
        engine.close()
    return found


def make_feed(inputs: tuple[InputSpec, ...], batch: int, seed: int = 0,
              axis: int = 1) -> dict[str, np.ndarray]:
    """Inputs of the right dtype and shape; dynamic axes after the batch axis become ``axis``.

    Integer inputs are zeros: always a valid index (labels, token ids), and the
    compute cost of these models does not depend on the values. A float input with a
    declared range (a noise level, say) is drawn within it: the server refuses others.
    """
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    for spec in inputs:
        shape = [batch if i == 0 and d == -1 else (d if d > 0 else axis) for i, d in enumerate(spec.shape)]
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f" and spec.range is not None:
            feed[spec.name] = rng.uniform(*spec.range, shape).astype(dtype)
        elif dtype.kind == "f":
            feed[spec.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feed[spec.name] = np.zeros(shape, dtype)
    return feed


def batch_sweep(model: ModelInfo, candidates: tuple[int, ...]) -> list[int]:
    """The batch sizes to try: the candidates up to the model's max batch size."""
    if model.max_batch_size <= 0:
        return [1]
    return [b for b in candidates if b <= model.max_batch_size] or [1]

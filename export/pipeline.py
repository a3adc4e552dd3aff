"""``museforge export``: train -> export -> validate -> evaluate -> manifest, for one recipe."""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from museforge.manifest import MODEL_NAME, Manifest, TensorInfo, sha256_of
from museforge.recipe import Recipe

from .convert import export_onnx
from .spec import ExportSpec
from .training import Checkpoints, ProgressBar
from .validate import ValidationReport, validate_export

VALIDATION_BATCHES = (1, 3, 8)


@dataclass
class RecipeContext:
    """What a recipe's build function receives."""

    seed: int
    quick: bool
    progress: Callable[[int, int, dict[str, float]], None]
    checkpoints: Checkpoints


@dataclass
class TrainedModel:
    """What a recipe's build function returns."""

    module: torch.nn.Module
    spec: ExportSpec
    # (rng, batch) -> model inputs of that batch size, in the spec's input order.
    make_inputs: Callable[[np.random.Generator, int], dict[str, np.ndarray]]
    dataset: dict[str, Any]
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    # Quality on held-out data, computed on the exported ONNX model itself.
    evaluate: Callable[[ort.InferenceSession], dict[str, Any]] | None = None


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    manifest: Manifest
    validation: ValidationReport


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("museforge", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "numpy",
                 "scikit-learn"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_recipe(
    recipe: Recipe,
    *,
    seed: int = 0,
    quick: bool = False,
    output: Path | None = None,
    version: int = 1,
    show_progress: bool = True,
    checkpoint_dir: Path | None = None,
) -> ExportResult:
    """Reproduce ``recipe``'s model into ``output/<version>/`` (default: the shipped place)."""
    target_root = output or recipe.models_dir
    bar = ProgressBar(f"train {recipe.name}{' (quick)' if quick else ''}", show_progress)
    ctx = RecipeContext(seed=seed, quick=quick, progress=bar, checkpoints=Checkpoints(checkpoint_dir))
    started = time.perf_counter()
    try:
        trained: TrainedModel = recipe.load_build()(ctx)
    finally:
        bar.close()
    train_seconds = time.perf_counter() - started

    rng = np.random.default_rng(seed + 1)
    model = export_onnx(trained.module, trained.spec, trained.make_inputs(rng, 2))
    feeds = [trained.make_inputs(rng, b) for b in VALIDATION_BATCHES]
    report = validate_export(trained.module, model, trained.spec, feeds)

    metrics: dict[str, Any] = {}
    if trained.evaluate is not None:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        metrics = trained.evaluate(session)

    target_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target_root))
    try:
        onnx.save_model(model, staging / MODEL_NAME)
        manifest = Manifest(
            name=recipe.name,
            version=version,
            inputs=[TensorInfo(name=t.name, dtype=t.dtype, shape=list(t.shape))
                    for t in trained.spec.inputs],
            outputs=[TensorInfo(name=t.name, dtype=t.dtype, shape=list(t.shape))
                     for t in trained.spec.outputs],
            opset=trained.spec.opset,
            ir_version=model.ir_version,
            sha256=sha256_of(staging / MODEL_NAME),
            max_batch_size=trained.spec.max_batch_size,
            recipe=recipe.build,
            seed=seed,
            quick=quick,
            dataset=trained.dataset,
            training={
                "seconds": round(train_seconds, 1),
                "hyperparameters": trained.hyperparameters,
                "device": "cpu",
                "torch_threads": torch.get_num_threads(),
            },
            metrics=json.loads(json.dumps(metrics)),
            libraries=library_versions(),
            validation={"batch_sizes": list(report.batch_sizes),
                        "max_abs_diff": report.max_abs_diff},
        )
        manifest.write(staging)
        final = target_root / str(version)
        if final.exists():
            shutil.rmtree(final)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(directory=final, manifest=manifest, validation=report)

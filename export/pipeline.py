"""``museforge export``: train -> export -> validate -> evaluate -> manifest, for one recipe."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from museforge.engine.recipe import Recipe
from museforge.runtime.manifest import AxisRule, Manifest, TensorInfo, TrainingData

from .callbacks import Checkpoints, Hooks, Progress, ProgressBar
from .convert import Staged, discard, export_onnx, install, stage_version
from .half_storage import half_stored, largest_output_changes, storage_record
from .seeds import seed_everything
from .spec import ExportSpec
from .targets import VersionTaken, default_version, refusal
from .validate import ValidationReport, check_contract, validate_export

VALIDATION_BATCHES = (1, 3, 8)
# (rng, batch) -> model inputs of that batch size, in the spec's input order.
MakeInputs = Callable[[np.random.Generator, int], dict[str, np.ndarray]]


@dataclass
class RecipeContext:
    """What a recipe's build function receives."""

    seed: int
    quick: bool
    progress: Progress
    checkpoints: Checkpoints
    allow_noncommercial: bool = False  # `museforge export --allow-noncommercial`
    used: list[TrainingData] = field(default_factory=list)

    @property
    def hooks(self) -> Hooks:
        """The progress bar and checkpoints, as a trainer of the kit takes them."""
        return Hooks(self.progress, self.checkpoints)

    def use(self, *data: TrainingData) -> None:
        """Declare the data sets the recipe trains on, before it loads them: one whose licence
        forbids commercial use stops the export unless it was allowed. The manifest lists them."""
        barred = [d for d in data if d.commercial_use is False]
        if barred and not self.allow_noncommercial:
            raise NonCommercialData(
                "; ".join(f"{d.name}: {d.licence}" for d in barred)
                + ". A model trained on it may not be used commercially; pass --allow-noncommercial "
                "to train it anyway (its manifest and every artifact's provenance will say so)")
        self.used += [d for d in data if d not in self.used]


class NonCommercialData(RuntimeError):
    """A recipe would train on data whose licence forbids commercial use, and that was not allowed."""


@dataclass
class Companion:
    """A second model trained in the same run (e.g. a VAE's encoder beside its served decoder).

    It is exported, validated and written like the main model, with its own manifest, to
    ``<models root>/<directory>/<version>/``: beside the main model's directory by
    default, inside ``--output`` when one is given.
    """

    name: str  # served name, e.g. "mesh.props_encoder"
    directory: str  # e.g. "props_encoder"
    module: torch.nn.Module
    spec: ExportSpec
    make_inputs: MakeInputs | None = None  # None: the spec's example inputs


@dataclass
class TrainedModel:
    """What a recipe's build function returns."""

    module: torch.nn.Module
    spec: ExportSpec
    dataset: dict[str, Any]
    # Export and validation inputs; None: drawn as the spec says (ExportSpec.example_inputs).
    make_inputs: MakeInputs | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    # Quality on held-out data, computed on the exported ONNX model itself.
    evaluate: Callable[[ort.InferenceSession], dict[str, Any]] | None = None
    companions: tuple[Companion, ...] = ()
    # The data sets it learnt from and their licences, written to the manifest and from there
    # into every artifact's provenance.
    training_data: tuple[TrainingData, ...] = ()
    # Quality that needs the companions too: sessions by model name (the main one included).
    evaluate_sessions: Callable[[Mapping[str, ort.InferenceSession]], dict[str, Any]] | None = None
    # Store the main graph's large weights as float16 (export.half_storage): about half the file,
    # computed in float32 as before. Validated against PyTorch before, measured (evaluate) after.
    float16_weights: bool = False


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
    version: int | None = None,
    show_progress: bool = True,
    checkpoint_dir: Path | None = None,
    allow_noncommercial: bool = False,
    replace: bool = False,
) -> ExportResult:
    """Reproduce ``recipe``'s model into ``output/<version>/`` (default: the shipped place). Without
    ``version``: the next free one, or with ``replace`` the newest. An existing version is rewritten
    only with ``replace``, another model's never (VersionTaken, said before training)."""
    target_root = output or recipe.models_dir
    version = version or default_version(target_root, rewrite_newest=replace)
    if said := refusal(target_root, recipe.name, version, replace):
        raise VersionTaken(said)
    bar = ProgressBar(f"train {recipe.name}{' (quick)' if quick else ''}", show_progress)
    ctx = RecipeContext(seed=seed, quick=quick, progress=bar, checkpoints=Checkpoints(checkpoint_dir),
                        allow_noncommercial=allow_noncommercial)
    started = time.perf_counter()
    # Seeded before the recipe runs: a network built before its training loop seeds torch
    # would otherwise start from weights drawn from a fresh default seed in every process.
    seed_everything(seed)
    try:
        trained: TrainedModel = recipe.load_build()(ctx)
    finally:
        bar.close()
    run = _Run(recipe, seed, quick, version, trained, time.perf_counter() - started, tuple(ctx.used),
               bar.resumed)

    rng = np.random.default_rng(seed + 1)
    main = _export(trained.module, trained.spec, trained.make_inputs, rng, half=trained.float16_weights)
    companions = [(c, _export(c.module, c.spec, c.make_inputs, rng)) for c in trained.companions]

    sessions = {recipe.name: main.session(), **{c.name: exported.session() for c, exported in companions}}
    # What the server checks at load, checked now: a manifest that does not describe its graph
    # would be written, then refused by every server.
    for name, spec, exported in ((recipe.name, trained.spec, main),
                                 *((c.name, c.spec, e) for c, e in companions)):
        check_contract(run.manifest(name, spec, exported, {}), sessions[name], spec)
    metrics: dict[str, Any] = {}
    if trained.evaluate is not None:
        metrics.update(trained.evaluate(sessions[recipe.name]))
    if trained.evaluate_sessions is not None:
        metrics.update(trained.evaluate_sessions(sessions))

    companion_roots = [(output or recipe.models_dir.parent) / c.directory for c, _ in companions]
    for (companion, _), root in zip(companions, companion_roots, strict=True):
        if said := refusal(root, companion.name, version, replace):
            raise VersionTaken(said)
    staged: list[Staged] = []
    try:
        for (companion, exported), root in zip(companions, companion_roots, strict=True):
            manifest = run.manifest(companion.name, companion.spec, exported, {"companion_of": recipe.name})
            staged.append(stage_version(exported.model, manifest, root, version, replace))
        staged.append(stage_version(main.model, run.manifest(recipe.name, trained.spec, main, metrics),
                                    target_root, version, replace))
    except BaseException:
        discard(staged)
        raise
    install(staged)  # the model and its companions together, or none of them
    return ExportResult(directory=staged[-1].final, manifest=staged[-1].manifest, validation=main.report)


@dataclass(frozen=True)
class _Run:
    """One export run: what every manifest it writes records besides its own model."""

    recipe: Recipe
    seed: int
    quick: bool
    version: int
    trained: TrainedModel
    train_seconds: float
    used: tuple[TrainingData, ...] = ()  # what the recipe declared with RecipeContext.use
    resumed: tuple[int, int] | None = None  # (after step, of total): train_seconds timed the rest only

    def manifest(self, name: str, spec: ExportSpec, exported: _Exported, metrics: dict[str, Any]) -> Manifest:
        after, of = self.resumed or (0, 0)
        resumed = {"resumed": {"after_step": after, "of": of}} if self.resumed else {}
        return Manifest(
            name=name,
            version=self.version,
            inputs=[TensorInfo(name=t.name, dtype=t.dtype, shape=list(t.shape), range=t.range)
                    for t in spec.inputs],
            outputs=[TensorInfo(name=t.name, dtype=t.dtype, shape=list(t.shape)) for t in spec.outputs],
            opset=spec.opset,
            ir_version=exported.model.ir_version,
            sha256="",  # set by write_version from the file written
            max_batch_size=spec.max_batch_size,
            max_input_elements=spec.max_input_elements,
            output_axes={axis: AxisRule(axis=source, scale=factor)
                         for axis, (source, factor) in spec.output_axes.items()},
            recipe=self.recipe.build,
            seed=self.seed,
            quick=self.quick,
            dataset=self.trained.dataset,
            training_data=list(self.trained.training_data or self.used),
            training={
                "seconds": round(self.train_seconds, 1),
                "hyperparameters": {**self.trained.hyperparameters, **exported.storage},
                "device": "cpu",
                "torch_threads": torch.get_num_threads(),
                **resumed,
            },
            metrics=json.loads(json.dumps(metrics)),
            libraries=library_versions(),
            validation={"batch_sizes": list(exported.report.batch_sizes),
                        "max_abs_diff": exported.report.max_abs_diff},
        )


@dataclass(frozen=True)
class _Exported:
    model: onnx.ModelProto
    report: ValidationReport  # of the graph as exported, against PyTorch
    storage: dict[str, Any] = field(default_factory=dict)  # half_storage's record, when stored half

    def session(self) -> ort.InferenceSession:
        return ort.InferenceSession(self.model.SerializeToString(), providers=["CPUExecutionProvider"])


def _export(module: torch.nn.Module, spec: ExportSpec, make_inputs: MakeInputs | None,
            rng: np.random.Generator, half: bool = False) -> _Exported:
    """Export one module and validate it against PyTorch on fresh inputs of several batch sizes;
    ``half``: then store its large weights as float16, recording how far each output moved."""
    make_inputs = make_inputs or spec.example_inputs
    model = export_onnx(module, spec, make_inputs(rng, 2))
    feeds = [make_inputs(rng, b) for b in VALIDATION_BATCHES]
    report = validate_export(module, model, spec, feeds)
    if not half:
        return _Exported(model, report)
    halved, storage = half_stored(model)
    return _Exported(halved, report, storage_record(storage, largest_output_changes(model, halved, feeds)))

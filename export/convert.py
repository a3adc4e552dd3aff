"""PyTorch -> ONNX, with the IR version pinned to what the installed ONNX Runtime reads.

torch is imported by the export functions only: checks of shipped models ask
``max_ir_version`` without it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnxruntime as ort

from museforge.runtime.manifest import MODEL_NAME, Manifest, sha256_of

from .spec import ExportSpec

if TYPE_CHECKING:
    import torch


class ExportError(RuntimeError):
    """The exporter could not produce a model."""


@functools.cache
def max_ir_version() -> int:
    """The newest ONNX IR version this onnxruntime loads, found by asking it.

    The ``onnx`` package may write a newer IR than the runtime reads ("Unsupported
    model IR version"); probing a one-node model is exact where a table would rot.
    """
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "p", [x], [y])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    for ir in range(onnx.IR_VERSION, 6, -1):
        model.ir_version = ir
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:
            continue
        return ir
    raise ExportError("onnxruntime accepted no IR version from 7 up; is it installed correctly?")


def apply_spec_shapes(model: onnx.ModelProto, spec: ExportSpec) -> None:
    """Declare the graph's input and output shapes exactly as the spec says.

    The TorchScript exporter's shape inference can mislabel axes (after Resize it
    names the image height "batch"); clients read these shapes, so the spec wins.
    """
    declared = {t.name: t for t in (*spec.inputs, *spec.outputs)}
    for value in (*model.graph.input, *model.graph.output):
        tensor = declared.get(value.name)
        if tensor is None:
            continue
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        for d in tensor.shape:
            dim = dims.add()
            if isinstance(d, str):
                dim.dim_param = d
            else:
                dim.dim_value = d


def to_torch(feed: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(v)) for v in feed.values())


def export_onnx(
    module: torch.nn.Module, spec: ExportSpec, example: dict[str, np.ndarray]
) -> onnx.ModelProto:
    """Export ``module`` (eval mode) as described by ``spec``; returns the checked model."""
    import torch

    if list(example) != spec.input_names:
        raise ExportError(f"example inputs {list(example)} differ from the spec's {spec.input_names}")
    module = module.eval()
    buffer = io.BytesIO()
    kwargs: dict[str, Any] = {
        "input_names": spec.input_names,
        "output_names": spec.output_names,
        "dynamic_axes": spec.dynamic_axes,
        "opset_version": spec.opset,
        "do_constant_folding": True,
    }
    # The TorchScript exporter gives small plain graphs with exactly the spec's names and
    # axes; torch now flags it as legacy, so fall back to the default exporter once it is gone.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            torch.onnx.export(module, to_torch(example), buffer,  # type: ignore[arg-type]
                              dynamo=False, **kwargs)
        except TypeError:
            torch.onnx.export(module, to_torch(example), buffer, **kwargs)  # type: ignore[arg-type]
    model = onnx.load_from_string(buffer.getvalue())
    apply_spec_shapes(model, spec)
    model.ir_version = min(model.ir_version, max_ir_version())
    model.producer_name = "museforge"
    onnx.checker.check_model(model)
    return model


@dataclass(frozen=True)
class Staged:
    """A version written whole into a hidden folder beside where it goes, not yet in place."""

    staging: Path
    final: Path
    manifest: Manifest


def stage_version(model: onnx.ModelProto, manifest: Manifest, root: Path, version: int,
                  replace: bool = True) -> Staged:
    """model.onnx + manifest.json (its sha256 filled in) staged for root/<version>/. ``replace``
    False refuses a version that exists (FileExistsError), as a new version never may overwrite one."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / str(version)
    if final.exists() and not replace:
        raise FileExistsError(f"{final} exists; a version is never overwritten")
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
    try:
        onnx.save_model(model, staging / MODEL_NAME)
        manifest = manifest.model_copy(update={"sha256": sha256_of(staging / MODEL_NAME)})
        manifest.write(staging)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Staged(staging, final, manifest)


def install(staged: Sequence[Staged]) -> None:
    """Put staged versions in place, all of them or none: each one they replace is renamed
    aside first and renamed back should anything (Ctrl-C included) stop the swap, so a model and
    its companions never mix two exports, and an interrupted export never deletes the old one."""
    aside: list[tuple[Path, Path]] = []
    try:
        for one in staged:
            if one.final.exists():
                old = Path(tempfile.mkdtemp(prefix=f".replaced-{one.final.name}-", dir=one.final.parent))
                old.rmdir()
                aside.append((old, one.final))  # noted before the rename: a rollback knows it
                one.final.rename(old)
            one.staging.rename(one.final)
    except BaseException:
        _roll_back(staged, aside)
        raise
    for old, _ in aside:
        shutil.rmtree(old, ignore_errors=True)


def discard(staged: Sequence[Staged]) -> None:
    """Remove staged versions not put in place."""
    for one in staged:
        shutil.rmtree(one.staging, ignore_errors=True)


def _roll_back(staged: Sequence[Staged], aside: Sequence[tuple[Path, Path]]) -> None:
    """Undo what ``install`` did so far, each step on its own: one that fails leaves the rest to run."""
    for one in staged:
        if not one.staging.exists() and one.final.exists():  # it was put in place: take it out
            with contextlib.suppress(OSError):
                shutil.rmtree(one.final)
    discard(staged)
    for old, final in aside:
        if old.exists() and not final.exists():
            with contextlib.suppress(OSError):
                old.rename(final)


def write_version(model: onnx.ModelProto, manifest: Manifest, root: Path, version: int,
                  replace: bool = True) -> tuple[Path, Manifest]:
    """``stage_version`` then ``install``: root/<version>/ whole or not at all."""
    staged = stage_version(model, manifest, root, version, replace)
    install([staged])
    return staged.final, staged.manifest

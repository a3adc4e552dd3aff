"""Parity between the PyTorch module and the exported ONNX model on fresh inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import torch

from museforge.runtime.manifest import Manifest
from museforge.runtime.model_checks import contract_problems, specs

from .convert import to_torch
from .spec import ExportSpec


class ExportValidationError(AssertionError):
    """An export does not behave like the module it came from."""


class OutputNamesMismatch(ExportValidationError):
    """The ONNX graph's outputs are not the ones the spec names."""


class OutputShapeMismatch(ExportValidationError):
    """An output has a different shape in ONNX Runtime than in PyTorch."""


class OutputValuesMismatch(ExportValidationError):
    """An output differs beyond the spec's tolerance."""


class InputOutOfRange(ExportValidationError):
    """A validation input lies outside the range the spec declares: the range is too narrow."""


class ManifestDoesNotDescribeGraph(ExportValidationError):
    """The manifest the export would write says other inputs or outputs than the graph has."""


def check_contract(manifest: Manifest, session: ort.InferenceSession, spec: ExportSpec) -> None:
    """The check the server makes before serving a version (names, dtypes, ranks, fixed axes),
    made on the manifest from the recipe's ExportSpec and the exported graph."""
    graph = specs(session.get_inputs(), manifest), specs(session.get_outputs())
    problems = contract_problems(manifest, *graph)
    if not problems:
        return
    said = "; ".join(problems)
    at_fault = [t for t in (*spec.inputs, *spec.outputs) if f" {t.name} " in f" {said} "] or \
        [*spec.inputs, *spec.outputs]  # names differ: every declaration is in question
    declared = ", ".join(f"TensorSpec({t.name!r}, {t.dtype!r}, {tuple(t.shape)!r})" for t in at_fault)
    raise ManifestDoesNotDescribeGraph(
        f"the manifest.json it would write does not describe the exported model.onnx, so no server would "
        f"load it: {said}. The recipe's ExportSpec declares {declared}; declare the names, dtypes and "
        "shapes the module really takes and returns")


def check_declared(spec: ExportSpec, feed: dict[str, np.ndarray], actual: list[np.ndarray]) -> None:
    """What the manifest will promise holds here: inputs in their ranges, outputs of the sizes
    the server will predict from the inputs (``output_axes``) before running."""
    for tensor in spec.inputs:
        values = feed[tensor.name]
        if tensor.range and values.size and not (
                tensor.range[0] <= values.min() and values.max() <= tensor.range[1]):
            raise InputOutOfRange(f"{tensor.name}: values {values.min()}..{values.max()} "
                                  f"outside the declared range {list(tensor.range)}")
    sizes = spec.resolve_axes({name: array.shape for name, array in feed.items()})
    for tensor, got in zip(spec.outputs, actual, strict=True):
        want = tuple(sizes.get(d, -1) if isinstance(d, str) else d for d in tensor.shape)
        if any(w >= 0 and w != g for w, g in zip(want, got.shape, strict=False)):
            raise OutputShapeMismatch(f"{tensor.name}: onnxruntime {got.shape}, but the spec "
                                      f"predicts {want} (-1: not predicted)")


@dataclass(frozen=True)
class ValidationReport:
    batch_sizes: tuple[int, ...]
    max_abs_diff: dict[str, float]


def validate_export(
    module: torch.nn.Module,
    model: onnx.ModelProto,
    spec: ExportSpec,
    feeds: list[dict[str, np.ndarray]],
) -> ValidationReport:
    """Run every feed through both; raise a specific ExportValidationError on any difference."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if names != spec.output_names:
        raise OutputNamesMismatch(f"ONNX outputs {names} != spec outputs {spec.output_names}")
    worst = dict.fromkeys(names, 0.0)
    batches = []
    module = module.eval()
    for feed in feeds:
        batches.append(len(next(iter(feed.values()))))
        with torch.no_grad():
            expected = module(*to_torch(feed))
        if isinstance(expected, torch.Tensor):
            expected = (expected,)
        actual = session.run(None, feed)
        check_declared(spec, feed, actual)
        for name, want_t, got in zip(names, expected, actual, strict=True):
            want = want_t.detach().cpu().numpy()
            if want.shape != got.shape:
                raise OutputShapeMismatch(f"{name}: torch {want.shape} vs onnxruntime {got.shape}")
            if not np.allclose(got, want, rtol=spec.rtol, atol=spec.atol):
                diff = float(np.max(np.abs(got - want)))
                raise OutputValuesMismatch(
                    f"{name}: max |diff| {diff:.3g} exceeds rtol={spec.rtol}, atol={spec.atol}"
                )
            worst[name] = max(worst[name], float(np.max(np.abs(got - want), initial=0.0)))
    return ValidationReport(batch_sizes=tuple(batches), max_abs_diff=worst)

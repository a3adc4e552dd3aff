"""What a model's inputs must satisfy, and what its outputs will weigh, before it runs.

Shapes and dtypes come from the ONNX Runtime session; value ranges and output-axis rules
from the model's manifest. Everything here is plain numpy: the runtime calls it for every
request, the Open Inference Protocol service also for its size limits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .manifest import AxisRule, Manifest

if TYPE_CHECKING:  # only its type: the tensor checks that share FieldError need no ONNX Runtime
    import onnxruntime as ort

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


class FieldError(ValueError):
    """A value refused with the field (request field or model input) at fault, and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InputError(FieldError):
    """Inputs that do not fit the model; ``field`` names the offending input."""


class ModelRefused(InputError):
    """ONNX Runtime refused inputs that passed every declared check (a size the network cannot
    take, say); ``fields`` names the inputs most likely at fault."""

    def __init__(self, fields: tuple[str, ...], message: str) -> None:
        super().__init__(fields[0] if len(fields) == 1 else "inputs", message)
        self.fields = fields


@dataclass(frozen=True)
class TensorSpec:
    """A session input or output; -1 marks a dynamic axis.

    ``dims`` keeps ONNX Runtime's axis names ("height"; None when unnamed); ``range`` is
    the manifest's declared value range, both ends included.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    dims: tuple[int | str | None, ...] = ()
    range: tuple[float, float] | None = None


def specs(args: Sequence[ort.NodeArg], manifest: Manifest | None = None) -> tuple[TensorSpec, ...]:
    ranges = {t.name: t.range for t in manifest.inputs} if manifest else {}
    return tuple(
        TensorSpec(
            name=a.name,
            dtype=np.dtype(ORT_TO_NUMPY.get(a.type, np.float32)),
            shape=tuple(d if isinstance(d, int) and d >= 0 else -1 for d in a.shape),
            dims=tuple(d if isinstance(d, (int, str)) else None for d in a.shape),
            range=ranges.get(a.name),
        )
        for a in args
    )


def contract_problems(manifest: Manifest, inputs: Sequence[TensorSpec],
                      outputs: Sequence[TensorSpec]) -> list[str]:
    """How the manifest's inputs and outputs differ from the graph's: names, dtypes, axes. The
    server checks requests by the graph and ranges by the manifest, so the two must agree."""
    problems: list[str] = []
    for what, declared, actual in (("input", manifest.inputs, inputs), ("output", manifest.outputs, outputs)):
        graph = {spec.name: spec for spec in actual}
        named = {info.name for info in declared}
        if named != set(graph):
            problems.append(f"{what}s {sorted(named)} in manifest.json, {sorted(graph)} in the graph")
            continue
        for info in declared:
            spec = graph[info.name]
            if np.dtype(info.dtype) != spec.dtype:
                problems.append(f"{what} {info.name} is {info.dtype} in manifest.json, "
                                f"{spec.dtype} in the graph")
            fixed = [d if isinstance(d, int) and d >= 0 else -1 for d in info.shape]
            if len(fixed) != len(spec.shape) or any(a != b for a, b in zip(fixed, spec.shape, strict=True)
                                                    if a >= 0 and b >= 0):
                problems.append(f"{what} {info.name} has shape {info.shape} in manifest.json, "
                                f"{list(spec.dims)} in the graph")
    return problems


def check_range(name: str, array: np.ndarray, bounds: tuple[float, float]) -> None:
    """Refuse values outside the declared range (an embedding index past its table fails the
    whole session run, and with it every request batched alongside)."""
    if not array.size:
        return
    if array.size == 1:  # a batch-1 scalar, as step models take several of per call: no reductions
        low = high = array.reshape(-1)[0]  # a numpy scalar, compared in its own dtype as min() is
    else:
        low, high = array.min(), array.max()
    if not (bounds[0] <= low and high <= bounds[1]):  # NaN fails both comparisons
        raise InputError(name, f"values must be within [{bounds[0]:g}, {bounds[1]:g}]; "
                         f"got {low:g} to {high:g}")


# ONNX Runtime's message for a refused input carries its C++ source location; a caller needs
# the sentence after it, not the build tree's paths.
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
_ORT_SOURCE = re.compile(r"\S+\.(?:h|hpp|cc|cpp|c):\d+ (?:.*? was false\. ?)?", re.S)


def refusal(inputs: Sequence[TensorSpec], exc: Exception) -> ModelRefused:
    """Name the inputs an ONNX Runtime refusal most likely concerns, with a clean message."""
    text = _ORT_SOURCE.sub("", _ORT_PREFIX.sub("", str(exc)))
    text = " ".join(text.split())[:400]
    named = tuple(s.name for s in inputs if re.search(rf"\b{re.escape(s.name)}\b", text))
    indices = tuple(s.name for s in inputs if s.dtype.kind in "iu") if "indices" in text else ()
    sized = tuple(s.name for s in inputs if -1 in s.shape[1:])
    fields = named or indices or sized or tuple(s.name for s in inputs)
    return ModelRefused(fields, f"the model refused the input: {text}")


def output_bytes(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                 rules: Mapping[str, AxisRule], shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    """The bytes of every output for inputs of these shapes, before running.

    An output axis is sized from the input axis of the same name, or by a manifest rule
    (``height_x4`` = 4 x ``height``); None when some axis is neither.
    """
    sizes = {d: shapes[s.name][i] for s in inputs if s.name in shapes
             for i, d in enumerate(s.dims) if isinstance(d, str) and i < len(shapes[s.name])}
    for axis, rule in rules.items():
        if rule.axis in sizes:
            sizes[axis] = sizes[rule.axis] * rule.scale
    total = 0
    for spec in outputs:
        dims = [d if isinstance(d, int) else sizes.get(d) if d is not None else None for d in spec.dims]
        known = [d for d in dims if d is not None]
        if len(known) != len(dims):
            return None
        total += math.prod(known) * spec.dtype.itemsize
    return total

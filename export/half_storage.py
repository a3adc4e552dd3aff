"""Store a graph's large float32 weights as float16, to halve the size of the file that ships.

Each float32 initialiser of ``min_elements`` values or more is kept as float16 under a new name
and a ``Cast`` back to float32 takes its old name, so every node reads float32 as before and
computes in float32 as before: only the weights are rounded (to 11 significant bits). ONNX
Runtime folds the casts when it loads the graph, so a run costs what it did. Small tensors
(biases, norms' scales, shapes) stay as they were: they are a sliver of the bytes. The outputs
move by the rounding, so a graph stored this way is a new model version with its figures
measured again, never an edit of a shipped one. No torch is imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["HALF_SUFFIX", "MIN_ELEMENTS", "HalfStorage", "half_stored", "largest_output_changes",
           "storage_record"]

MIN_ELEMENTS = 4096
HALF_SUFFIX = "/float16"


@dataclass(frozen=True)
class HalfStorage:
    """What ``half_stored`` did: the initialisers it converted (of ``min_elements`` values or more)
    and the bytes of weights before and after."""

    min_elements: int
    converted: int
    bytes_before: int
    bytes_after: int


def half_stored(graph: onnx.ModelProto,
                min_elements: int = MIN_ELEMENTS) -> tuple[onnx.ModelProto, HalfStorage]:
    """``graph`` with its float32 initialisers of ``min_elements`` values or more stored as float16."""
    if min_elements < 1:
        raise ValueError(f"min_elements must be 1 or more, got {min_elements}")
    names = {t.name for t in graph.graph.initializer}
    if any(name.endswith(HALF_SUFFIX) for name in names):
        raise ValueError("the graph's weights are already stored as float16")
    inputs = {i.name for i in graph.graph.input}
    kept: list[TensorProto] = []
    casts: list[onnx.NodeProto] = []
    before = after = 0
    for tensor in graph.graph.initializer:
        array = numpy_helper.to_array(tensor)
        before += array.nbytes
        # An initialiser that is also a graph input is a default the caller may replace: left alone.
        if tensor.data_type != TensorProto.FLOAT or array.size < min_elements or tensor.name in inputs:
            kept.append(tensor)
            after += array.nbytes
            continue
        if np.abs(array).max() > np.finfo(np.float16).max:  # would be stored as an infinity
            raise ValueError(f"{tensor.name} holds values beyond float16's range")
        half = array.astype(np.float16)
        kept.append(numpy_helper.from_array(half, tensor.name + HALF_SUFFIX))
        casts.append(helper.make_node("Cast", [tensor.name + HALF_SUFFIX], [tensor.name],
                                      to=TensorProto.FLOAT, name=tensor.name + "/cast"))
        after += half.nbytes
    out = onnx.ModelProto()
    out.CopyFrom(graph)
    del out.graph.initializer[:], out.graph.node[:]
    out.graph.initializer.extend(kept)
    out.graph.node.extend([*casts, *graph.graph.node])  # the casts first: the order stays topological
    onnx.checker.check_model(out)
    return out, HalfStorage(min_elements, len(casts), before, after)


def largest_output_changes(before: onnx.ModelProto, after: onnx.ModelProto,
                           feeds: Sequence[Mapping[str, np.ndarray]]) -> dict[str, float]:
    """Each output's largest absolute change from ``before`` to ``after`` over ``feeds`` (CPU)."""
    import onnxruntime as ort

    def session(model: onnx.ModelProto) -> Any:
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    old, new = session(before), session(after)
    names = [o.name for o in old.get_outputs()]
    changes = dict.fromkeys(names, 0.0)
    for feed in feeds:
        for name, a, b in zip(names, old.run(names, dict(feed)), new.run(names, dict(feed)), strict=True):
            changes[name] = max(changes[name], float(np.abs(np.asarray(a) - np.asarray(b)).max()))
    return changes


def storage_record(storage: HalfStorage, changes: Mapping[str, float]) -> dict[str, Any]:
    """What a manifest records of a graph stored half (under ``hyperparameters.half_storage``)."""
    return {"half_storage": {"min_elements": storage.min_elements, "initialisers": storage.converted,
                             "weight_bytes_before": storage.bytes_before,
                             "weight_bytes_after": storage.bytes_after,
                             "largest_output_change": dict(changes)}}

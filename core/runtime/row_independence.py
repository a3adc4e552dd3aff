"""Whether a model's first axis is a batch of independent rows, tried before it is served.

A dynamic first axis is read as a batch, and the dynamic batcher stacks concurrent requests
along it. That is only right when each row's outputs depend on that row alone: a graph that
sums, sorts or normalises over the first axis (a cumulative sum, a softmax over it, batch
statistics) would hand each caller numbers mixed with another caller's. ``museforge models
add`` runs the graph on two rows alone and stacked; if they differ, the model is served
without merging requests (its manifest says ``batching: false``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from .model_checks import TensorSpec

TRIAL_SIZES = (1, 16, 64)  # other dynamic axes, as the warm-up tries them
# A merged run may pick other kernels and add in another order; its rows must still agree to a
# few units in the last place of their dtype, against the output's own scale (not near zero).
ULPS = 64


def rows_independent(session: ort.InferenceSession, inputs: Sequence[TensorSpec]) -> bool | None:
    """True when two rows run stacked give what each gives alone; None when it could not be tried
    (a string input, or no trial size the graph takes)."""
    if any(spec.dtype.kind not in "biuf" for spec in inputs):
        return None
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # a size the graph refuses is expected here
    rng = np.random.default_rng(0)
    for size in TRIAL_SIZES:
        rows = [{spec.name: _row(spec, size, rng) for spec in inputs} for _ in range(2)]
        stacked = {spec.name: np.concatenate([row[spec.name] for row in rows]) for spec in inputs}
        try:
            alone = [session.run(None, row, quiet) for row in rows]
            together = session.run(None, stacked, quiet)
        except Exception:
            continue  # this size is not one the graph takes: try the next
        return all(
            _agree(merged[index:index + 1], own)
            for index, own_outputs in enumerate(alone)
            for merged, own in zip(together, own_outputs, strict=True)
        )
    return None


def _row(spec: TensorSpec, size: int, rng: np.random.Generator) -> np.ndarray:
    shape = [1] + [d if d >= 0 else size for d in spec.shape[1:]]
    if spec.dtype.kind == "f":
        return rng.standard_normal(shape).astype(spec.dtype)
    if spec.dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    # 0 and 1 are valid wherever integers index or label something; two rows still differ.
    return rng.integers(0, 2, shape).astype(spec.dtype)


def _agree(merged: np.ndarray, own: np.ndarray) -> bool:
    if merged.shape != own.shape:
        return False
    if merged.dtype.kind in "fc":
        tolerance = ULPS * float(np.finfo(own.dtype).eps)
        finite = own[np.isfinite(own)]
        scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
        return bool(np.allclose(merged, own, rtol=tolerance, atol=tolerance * scale, equal_nan=True))
    return bool(np.array_equal(merged, own))

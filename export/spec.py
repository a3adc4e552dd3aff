"""Declarative export specs: tensor names and dynamic axes are written once, here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """One input or output. A string in ``shape`` names a dynamic axis (e.g. ``"batch"``)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def concrete_shape(self, axes: dict[str, int]) -> tuple[int, ...]:
        return tuple(axes[d] if isinstance(d, str) else d for d in self.shape)


@dataclass(frozen=True)
class ExportSpec:
    """Everything ``torch.onnx.export`` and the validator need to know about a model."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int = 17
    rtol: float = 1e-3
    atol: float = 1e-4
    max_batch_size: int = 0  # 0: no limit from the model; the server's batcher decides

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes: dict[str, dict[int, str]] = {}
        for tensor in (*self.inputs, *self.outputs):
            named = {i: d for i, d in enumerate(tensor.shape) if isinstance(d, str)}
            if named:
                axes[tensor.name] = named
        return axes

    def random_inputs(
        self, rng: np.random.Generator, axes: dict[str, int], int_high: int = 2
    ) -> dict[str, np.ndarray]:
        """Fresh inputs for validation: normal floats, integers in [0, int_high)."""
        feed: dict[str, np.ndarray] = {}
        for tensor in self.inputs:
            shape = tensor.concrete_shape(axes)
            dtype = np.dtype(tensor.dtype)
            if np.issubdtype(dtype, np.floating):
                feed[tensor.name] = rng.standard_normal(shape).astype(dtype)
            else:
                feed[tensor.name] = rng.integers(0, int_high, size=shape).astype(dtype)
        return feed

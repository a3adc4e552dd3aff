"""Declarative export specs: tensor names and dynamic axes are written once, here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

# How validation draws one input's values: (rng, concrete shape) -> array (cast to the dtype after).
Draw = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def pixels(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform in [0, 1), drawn in float32: pictures."""
    return rng.random(shape, dtype=np.float32)


def uniform(low: float, high: float) -> Draw:
    """Uniform in [low, high): e.g. the part of a conditioning range worth validating."""
    return lambda rng, shape: rng.uniform(low, high, shape)


def normal(scale: float) -> Draw:
    """Normal with mean 0 and standard deviation ``scale`` (the default draw is ``scale`` 1)."""
    return lambda rng, shape: scale * rng.standard_normal(shape)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output. A string in ``shape`` names a dynamic axis (e.g. ``"batch"``).

    ``range``: the values the model accepts, both ends included: every integer or
    categorical input (an embedding index out of range fails the whole session run) and
    conditioning levels the network was trained on. It goes into the manifest, and the
    server refuses a request outside it before the model runs.
    """

    name: str
    dtype: str
    shape: tuple[int | str, ...]
    range: tuple[int | float, int | float] | None = None
    # How validation draws this input (not part of the manifest). None: normal floats (uniform
    # within ``range`` when there is one), integers over ``range`` (0 or 1 without one).
    example: Draw | None = None

    def concrete_shape(self, axes: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(axes[d] if isinstance(d, str) else d for d in self.shape)

    def draw(self, rng: np.random.Generator, axes: Mapping[str, int], int_high: int = 2) -> np.ndarray:
        """Values of this input's shape at ``axes``, cast to its dtype."""
        shape = self.concrete_shape(axes)
        dtype = np.dtype(self.dtype)
        values: np.ndarray
        if self.example is not None:
            values = self.example(rng, shape)
        elif np.issubdtype(dtype, np.floating):
            values = rng.uniform(*self.range, shape) if self.range else rng.standard_normal(shape)
        else:
            low, high = self.range if self.range else (0, int_high - 1)
            values = rng.integers(int(low), int(high) + 1, size=shape)
        return values.astype(dtype)


@dataclass(frozen=True)
class ExportSpec:
    """Everything ``torch.onnx.export`` and the validator need to know about a model."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int = 17
    rtol: float = 1e-3
    atol: float = 1e-4
    max_batch_size: int = 0  # 0: no limit from the model; the server's batcher decides
    # The largest request (all inputs' elements together) the server accepts for this model:
    # what the plugin itself feeds it in one call. 0: only the server's own budget applies.
    max_input_elements: int = 0
    # Output axes the inputs do not name: axis -> (input axis, factor), e.g.
    # {"height_x4": ("height", 4)}; the server sizes a reply from it before running.
    output_axes: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    # Sizes of the symbolic axes other than "batch" in validation inputs: a size, or a
    # (low, high) range each call draws a size from (high excluded), in this order.
    example_axes: Mapping[str, int | tuple[int, int]] = field(default_factory=dict)

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
        self, rng: np.random.Generator, axes: Mapping[str, int], int_high: int = 2
    ) -> dict[str, np.ndarray]:
        """Fresh inputs at ``axes``, each drawn as its ``TensorSpec.draw`` says."""
        return {tensor.name: tensor.draw(rng, axes, int_high) for tensor in self.inputs}

    def example_inputs(self, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        """Inputs for export and validation: ``batch`` rows at the ``example_axes`` sizes."""
        axes = {"batch": batch}
        for axis, size in self.example_axes.items():
            axes[axis] = size if isinstance(size, int) else int(rng.integers(*size))
        return self.random_inputs(rng, axes)

    def resolve_axes(self, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
        """Every symbolic axis's size for inputs of these shapes, output axes included."""
        sizes = {d: shapes[t.name][i] for t in self.inputs for i, d in enumerate(t.shape)
                 if isinstance(d, str) and t.name in shapes}
        for axis, (source, factor) in self.output_axes.items():
            if source in sizes:
                sizes[axis] = sizes[source] * factor
        return sizes


def tiled_run_elements(channels: int, tile: int, halo: int, multiple: int = 1, batch: int = 1) -> int:
    """Elements of one tiled session run: ``batch`` tiles of ``tile`` pixels a side plus a ``halo``
    all round, each side rounded up to ``multiple`` (as museforge.engine.tiling pads them)."""
    side = -(-(tile + 2 * halo) // multiple) * multiple
    return batch * channels * side * side

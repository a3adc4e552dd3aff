"""The colour memory of ``effect.sketch``: how the training drawings nearest a sketch were coloured.

Export path only (torch). The U-Net colours from the line art alone, and on held-out drawings
its colour per object is worse than a flat fill of mean colours (docs/effects/sketch.md): the
choice of colour per object is what 1,858 drawings teach it least. OpenMoji draws many objects
more than once (faces, hands, fruit, signs), so the drawings whose line art is nearest a new
sketch say well what colours its parts take. The memory is that lookup, made part of the
graph so that it is served, versioned and checked like the rest of the model:

- **key**: the line art pooled to 32 x 32, blurred (a stroke a pixel off still counts as near)
  and projected on the training keys' first ``DIMENSIONS`` principal axes;
- **answer**: for the ``NEIGHBOURS`` training drawings with the nearest keys, each pixel's
  colour as one of the 24 palette colours (``sketch_palette``), or ``NONE`` where a drawing is
  transparent or has a stroke there; the graph's ``palette`` output is the share of the
  neighbours giving each answer at each pixel, (N, 25, H, W).

Serving (``sketch_region_colours``) pools those shares over each region the strokes enclose and
picks the region's colour. ``python -m museforge.plugins.effect.sketch_memory --from-version N``
adds a memory to a shipped version with no training; ``museforge export effect.sketch`` adds
one to the generator it trains.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from museforge.export.convert import export_onnx
from museforge.export.spec import ExportSpec, TensorSpec

from .sketch_data import SketchPairs
from .sketch_net import STYLE
from .sketch_palette import OPENMOJI_PALETTE, nearest_palette
from .sketch_region_colours import NONE, PALETTE_OUTPUT

__all__ = ["DIMENSIONS", "NEIGHBOURS", "ColourMemory", "SketchWithMemory", "derive_version", "with_memory"]

NEIGHBOURS = 5  # held-out ΔE at variation 0: 26.3; 27.2 with 3, 27.0 with 8 (docs/effects/sketch.md)
DIMENSIONS = 64  # principal axes of the keys: 64 and 256 find the same colours (ΔE 26.2 / 26.1)
_POOL = 2  # 64 -> 32 px: keys and answers at half size keep the graph a few MB
_BLUR = 0.75  # px at 32 px (1.5 at 64)
_RADIUS = 3
_OPSET = 17


def _blur_kernel() -> Tensor:
    x = torch.arange(-_RADIUS, _RADIUS + 1, dtype=torch.float64)
    line = torch.exp(-0.5 * (x / _BLUR) ** 2)
    line = line / line.sum()
    return torch.outer(line, line).to(torch.float32)[None, None]


def _pooled_blurred(lines: Tensor) -> Tensor:
    """(N, 1, H, W) ink -> (N, H/2 * W/2) keys before projection."""
    pooled = F.avg_pool2d(lines, _POOL)
    return F.conv2d(pooled, _blur_kernel(), padding=_RADIUS).flatten(1)


def colour_answers(pairs: SketchPairs) -> np.ndarray:
    """(N, H/2 * W/2) uint8: each training drawing's palette colour per pixel, NONE off its paint."""
    colour = pairs.unit_colour()
    painted = (colour[:, 3] > 0.5) & (pairs.unit_lines()[:, 0] < 0.5)
    answers = np.stack([nearest_palette(rgba[:3]) for rgba in colour]).astype(np.uint8)
    answers[~painted] = NONE
    return np.ascontiguousarray(answers[:, ::_POOL, ::_POOL].reshape(len(pairs), -1))


class ColourMemory(nn.Module):
    """(lines [N,1,H,W]) -> palette [N,25,H,W]: the nearest training drawings' colours, as shares."""

    centre: Tensor
    axes: Tensor
    keys: Tensor
    norms: Tensor
    answers: Tensor
    one_hot: Tensor

    def __init__(self, pairs: SketchPairs) -> None:
        super().__init__()
        if len(pairs) < NEIGHBOURS:
            raise ValueError(f"a colour memory needs at least {NEIGHBOURS} drawings, got {len(pairs)}")
        with torch.no_grad():
            keys = _pooled_blurred(torch.from_numpy(pairs.unit_lines())).double().numpy()
        centre = keys.mean(axis=0)
        axes = np.linalg.svd(keys - centre, full_matrices=False)[2][:DIMENSIONS].T
        projected = (keys - centre) @ axes
        self.register_buffer("centre", torch.from_numpy(centre.astype(np.float32)))
        self.register_buffer("axes", torch.from_numpy(np.ascontiguousarray(axes, np.float32)))
        self.register_buffer("keys", torch.from_numpy(projected.astype(np.float32)))
        self.register_buffer("norms", torch.from_numpy((projected**2).sum(axis=1).astype(np.float32)))
        self.register_buffer("answers", torch.from_numpy(colour_answers(pairs)))
        self.register_buffer("one_hot", torch.eye(len(OPENMOJI_PALETTE) + 1))

    def neighbours(self, lines: Tensor) -> Tensor:
        """(N, NEIGHBOURS) indices of the training drawings with the nearest keys."""
        query = (_pooled_blurred(lines) - self.centre) @ self.axes
        distances = self.norms[None] - 2.0 * query @ self.keys.T  # + |query|^2, the same for every key
        return torch.topk(distances, NEIGHBOURS, dim=1, largest=False).indices

    def forward(self, lines: Tensor) -> Tensor:
        n, _, h, w = lines.shape
        answers = self.answers[self.neighbours(lines)].long()  # (N, K, h/2 * w/2)
        shares = self.one_hot[answers].mean(dim=1)  # (N, h/2 * w/2, 25)
        shares = shares.transpose(1, 2).reshape(n, -1, h // _POOL, w // _POOL)
        return F.interpolate(shares, scale_factor=float(_POOL), mode="nearest")


class SketchWithMemory(nn.Module):
    """The served graph: the generator's image and the memory's colour shares."""

    def __init__(self, generator: nn.Module, memory: ColourMemory) -> None:
        super().__init__()
        self.generator = generator
        self.memory = memory

    def forward(self, lines: Tensor, hints: Tensor, style: Tensor) -> tuple[Tensor, Tensor]:
        return self.generator(lines, hints, style), self.memory(lines)


def palette_spec(size: int) -> TensorSpec:
    return TensorSpec(PALETTE_OUTPUT, "float32", ("batch", NONE + 1, size, size))


def memory_graph(memory: ColourMemory, size: int) -> onnx.ModelProto:
    """The memory alone as an ONNX graph (input ``lines``, output ``palette``)."""
    spec = ExportSpec(inputs=(TensorSpec("lines", "float32", ("batch", 1, size, size)),),
                      outputs=(palette_spec(size),), opset=_OPSET)
    example = {"lines": np.zeros((2, 1, size, size), np.float32)}
    return export_onnx(memory, spec, example)


def with_memory(graph: onnx.ModelProto, memory: onnx.ModelProto) -> onnx.ModelProto:
    """``graph`` (a served sketch graph, input ``lines``) with ``memory``'s nodes beside it, sharing
    ``lines`` and adding the ``palette`` output; every name of the memory's own is prefixed."""
    if any(o.name == PALETTE_OUTPUT for o in graph.graph.output):
        raise ValueError("the graph already has a colour memory")
    prefixed = onnx.compose.add_prefix(memory, "memory/", rename_inputs=False, rename_outputs=False)
    out = onnx.ModelProto()
    out.CopyFrom(graph)
    out.graph.node.extend(prefixed.graph.node)
    out.graph.initializer.extend(prefixed.graph.initializer)
    out.graph.output.extend(prefixed.graph.output)
    onnx.checker.check_model(out)
    return out


def parity(session: Any, parent: Any, memory: ColourMemory, lines: np.ndarray, hints: np.ndarray,
           style: np.ndarray) -> float:
    """Largest difference of the merged graph from its parts: its image against the parent graph's
    (which must be exact: the parent's nodes are untouched) and its palette against torch's."""
    feed = {"lines": lines, "hints": hints, "style": style}
    image, palette = session.run(["image", PALETTE_OUTPUT], feed)
    want_image = parent.run(["image"], feed)[0]
    if not np.array_equal(image, want_image):
        raise RuntimeError("the merged graph's image differs from the parent's")
    with torch.no_grad():
        want = memory(torch.from_numpy(lines)).numpy()
    return float(np.abs(palette - want).max())


def derive_version(parent: Path, output: Path, version: int | None = None, quick: bool = False) -> Path:
    """``output/<version>/``: the shipped version at ``parent`` with a colour memory of the training
    drawings added to its graph and its held-out figures recomputed; refuses a parent that has one."""
    import onnxruntime as ort

    from museforge.export.derived import ShippedVersion

    from .sketch_batches import training_batch
    from .sketch_data import sketch_held_out, sketch_train
    from .sketch_quality import evaluate_session

    shipped = ShippedVersion.read(parent)
    train, held = sketch_train(), sketch_held_out()
    if quick:
        train, held = train.subset(np.arange(48)), held.subset(np.arange(12))
    memory = ColourMemory(train).eval()
    size = train.lines.shape[1]
    merged = with_memory(shipped.graph(), memory_graph(memory, size))

    def session_of(model: onnx.ModelProto) -> Any:
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    session = session_of(merged)
    lines, hints, _ = training_batch(held, np.random.default_rng(0), 16)
    style = np.random.default_rng(1).standard_normal((16, STYLE)).astype(np.float32)
    difference = parity(session, session_of(shipped.graph()), memory, lines, hints, style)
    if difference > 1e-5:
        raise RuntimeError(f"the memory's graph differs from torch by {difference:g}")
    metrics = evaluate_session(session, held=held, train=train)
    record = {"colour_memory": {"drawings": len(train), "neighbours": NEIGHBOURS, "dimensions": DIMENSIONS,
                                "key_size": size // _POOL, "parity_max_difference": difference}}
    return shipped.derive(merged, output, version, hyperparameters=record, metrics=metrics, quick=quick,
                          added_outputs=(palette_spec(size),))


def main(argv: list[str] | None = None) -> int:
    from museforge.export.derived import derivation_main

    from .sketch import MODELS

    return derivation_main(
        argv, prog="python -m museforge.plugins.effect.sketch_memory", model="effect.sketch",
        models=MODELS / "sketch", derive=derive_version,
        description="Write the next effect.sketch version: a shipped version with a colour memory of "
                    "the training drawings added (no training), its held-out figures recomputed.",
        quick_help="a memory of 48 drawings, figures on 12 (a smoke test)")


if __name__ == "__main__":
    sys.exit(main())

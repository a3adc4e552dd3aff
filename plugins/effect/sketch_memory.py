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

Version 5 on ranks by colour too (``RankedColourMemory``): of the ``CANDIDATES`` nearest keys it
keeps the ``NEIGHBOURS`` whose colour mix is nearest a small network's guess from the line art
(``sketch_colour_mix``), shape distance breaking near ties.

Serving (``sketch_region_colours``) pools those shares over each region the strokes enclose and
picks the region's colour. ``python -m museforge.plugins.effect.sketch_memory --from-version N``
gives a shipped version's network a ranked memory (training only the colour-mix guess, a few
minutes; a memory the parent had is replaced); ``museforge export effect.sketch`` adds one to the
generator it trains.
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

from .sketch_colour_mix import FULL_STEPS as MIX_STEPS
from .sketch_colour_mix import QUICK_STEPS as MIX_QUICK_STEPS
from .sketch_colour_mix import ColourMix, colour_mix_of, train_colour_mix
from .sketch_data import SketchPairs
from .sketch_net import STYLE
from .sketch_palette import OPENMOJI_PALETTE, nearest_palette
from .sketch_region_colours import DRAW_OUTPUT, NONE, PALETTE_OUTPUT, SHARE_POWER

__all__ = ["CANDIDATES", "DIMENSIONS", "NEIGHBOURS", "ColourMemory", "RankedColourMemory", "SketchWithMemory",
           "derive_version", "ranked_memory", "with_memory", "without_memory"]

NEIGHBOURS = 5  # held-out ΔE at variation 0: 26.3; 27.2 with 3, 27.0 with 8 (docs/effects/sketch.md)
DIMENSIONS = 64  # principal axes of the keys: 64 and 256 find the same colours (ΔE 26.2 / 26.1)
# Chosen on a validation split of the training drawings (15%, the rest as the memory), at variation
# 0: colour error 28.4 -> 27.8 ΔE and histogram distance 0.479 -> 0.444 (10 candidates: 0.445;
# 40: 0.457; shape weight 0 or 0.2: 0.445, 0.446); docs/effects/sketch.md.
CANDIDATES = 20
MIX_SEED = 0
SHAPE_WEIGHT = 0.05  # per unit of key distance beyond the nearest's, beside a total-variation distance
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

    def outputs(self, lines: Tensor) -> tuple[Tensor, ...]:
        """What the served graph answers beside the image: ``specs``' tensors."""
        return (self(lines),)

    def specs(self, size: int) -> tuple[TensorSpec, ...]:
        return (palette_spec(size),)


class RankedColourMemory(ColourMemory):
    """A ``ColourMemory`` keeping, of the ``CANDIDATES`` nearest keys, the drawings whose colour
    mix (share of each palette colour) is nearest ``guess``'s for the sketch."""

    mixes: Tensor

    def __init__(self, pairs: SketchPairs, guess: ColourMix) -> None:
        super().__init__(pairs)
        self.guess = guess
        self.candidates = min(CANDIDATES, len(pairs))
        self.register_buffer("mixes", torch.from_numpy(colour_mix_of(self.answers.numpy())))

    def shape_candidates(self, lines: Tensor) -> tuple[Tensor, Tensor]:
        """(index, key distance), each (N, CANDIDATES): the drawings with the nearest keys, nearest first."""
        query = (_pooled_blurred(lines) - self.centre) @ self.axes
        squared = self.norms[None] - 2.0 * query @ self.keys.T + (query**2).sum(dim=1, keepdim=True)
        near, index = torch.topk(squared, self.candidates, dim=1, largest=False)
        return index, near.clamp(min=0.0).sqrt()

    def ranked(self, index: Tensor, distance: Tensor, mix: Tensor) -> Tensor:
        """(N, NEIGHBOURS) of the candidates ``index``, those whose colour mix is nearest ``mix`` (N, 24)."""
        apart = 0.5 * (self.mixes[index] - mix[:, None]).abs().sum(dim=-1)
        score = apart + SHAPE_WEIGHT * (distance - distance[:, :1])
        return torch.gather(index, 1, torch.topk(score, NEIGHBOURS, dim=1, largest=False).indices)

    def neighbours(self, lines: Tensor) -> Tensor:
        index, distance = self.shape_candidates(lines)
        return self.ranked(index, distance, torch.softmax(self.guess(lines), dim=1))

    def outputs(self, lines: Tensor) -> tuple[Tensor, ...]:
        # The draw rule travels with the version: serving reads it here, so versions 3 and 4
        # keep theirs (sketch_region_colours).
        shares = self(lines)
        return shares, shares[:, 0, 0, 0] * 0.0 + SHARE_POWER

    def specs(self, size: int) -> tuple[TensorSpec, ...]:
        return (palette_spec(size), TensorSpec(DRAW_OUTPUT, "float32", ("batch",)))


def ranked_memory(pairs: SketchPairs, *, seed: int, quick: bool = False) -> RankedColourMemory:
    """A ranked memory of ``pairs``, its colour-mix guess trained on them (with a progress bar)."""
    from tqdm import tqdm

    mixes = colour_mix_of(colour_answers(pairs))
    steps = MIX_QUICK_STEPS if quick else MIX_STEPS
    with tqdm(total=steps, desc="colour mix", unit="step", disable=quick or not sys.stderr.isatty()) as bar:
        def on_step(step: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        guess = train_colour_mix(pairs, mixes, steps=steps, seed=seed, on_step=on_step)
    return RankedColourMemory(pairs, guess).eval()


class SketchWithMemory(nn.Module):
    """The served graph: the generator's image and the memory's colour shares."""

    def __init__(self, generator: nn.Module, memory: ColourMemory) -> None:
        super().__init__()
        self.generator = generator
        self.memory = memory

    def forward(self, lines: Tensor, hints: Tensor, style: Tensor) -> tuple[Tensor, ...]:
        return self.generator(lines, hints, style), *self.memory.outputs(lines)


class _MemoryOutputs(nn.Module):
    def __init__(self, memory: ColourMemory) -> None:
        super().__init__()
        self.memory = memory

    def forward(self, lines: Tensor) -> tuple[Tensor, ...]:
        return self.memory.outputs(lines)


def palette_spec(size: int) -> TensorSpec:
    return TensorSpec(PALETTE_OUTPUT, "float32", ("batch", NONE + 1, size, size))


def memory_graph(memory: ColourMemory, size: int) -> onnx.ModelProto:
    """The memory alone as an ONNX graph: ``lines`` in, ``specs``' outputs out."""
    spec = ExportSpec(inputs=(TensorSpec("lines", "float32", ("batch", 1, size, size)),),
                      outputs=memory.specs(size), opset=_OPSET)
    example = {"lines": np.zeros((2, 1, size, size), np.float32)}
    return export_onnx(_MemoryOutputs(memory), spec, example)


def without_memory(graph: onnx.ModelProto) -> onnx.ModelProto:
    """``graph`` with only what its ``image`` output needs: a memory (and its ``palette``) dropped,
    every node the image needs kept as it was."""
    producer = {name: node for node in graph.graph.node for name in node.output}
    needed: set[str] = set()
    wanted = ["image"]
    while wanted:
        name = wanted.pop()
        if name in needed:
            continue
        needed.add(name)
        if name in producer:
            wanted.extend(n for n in producer[name].input if n)
    out = onnx.ModelProto()
    out.CopyFrom(graph)
    del out.graph.node[:], out.graph.initializer[:], out.graph.output[:]
    out.graph.node.extend(n for n in graph.graph.node if any(o in needed for o in n.output))
    out.graph.initializer.extend(i for i in graph.graph.initializer if i.name in needed)
    out.graph.output.extend(o for o in graph.graph.output if o.name == "image")
    del out.graph.value_info[:]
    onnx.checker.check_model(out)
    return out


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
    (which must be exact: the parent's nodes are untouched) and the memory's outputs against torch's."""
    feed = {"lines": lines, "hints": hints, "style": style}
    image, *answers = session.run(["image", *(s.name for s in memory.specs(lines.shape[-1]))], feed)
    want_image = parent.run(["image"], feed)[0]
    if not np.array_equal(image, want_image):
        raise RuntimeError("the merged graph's image differs from the parent's")
    with torch.no_grad():
        wanted = memory.outputs(torch.from_numpy(lines))
    return max(float(np.abs(got - want.numpy()).max()) for got, want in zip(answers, wanted, strict=True))


def derive_version(parent: Path, output: Path, version: int | None = None, quick: bool = False) -> Path:
    """``output/<version>/``: the network of the shipped version at ``parent`` beside a ranked colour
    memory of the training drawings (a memory the parent had is dropped), its held-out figures
    recomputed. Only the colour-mix guess is trained; the network's nodes are kept as they were."""
    import time

    import onnxruntime as ort

    from museforge.export.derived import ShippedVersion

    from .sketch_batches import training_batch
    from .sketch_quality import evaluate_session, evaluation_pairs

    shipped = ShippedVersion.read(parent)
    if version is not None and (output / str(version)).exists():  # before minutes of work, not after
        raise FileExistsError(f"{output / str(version)} exists; a version is never overwritten")
    train, held = evaluation_pairs(quick)
    started = time.monotonic()
    memory = ranked_memory(train, seed=MIX_SEED, quick=quick)
    trained_in = time.monotonic() - started
    size = train.lines.shape[1]
    network = shipped.graph()
    replaced = any(o.name == PALETTE_OUTPUT for o in network.graph.output)
    merged = with_memory(without_memory(network), memory_graph(memory, size))

    def session_of(model: onnx.ModelProto) -> Any:
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    session = session_of(merged)
    lines, hints, _ = training_batch(held, np.random.default_rng(0), 16)
    style = np.random.default_rng(1).standard_normal((16, STYLE)).astype(np.float32)
    difference = parity(session, session_of(network), memory, lines, hints, style)
    if difference > 1e-5:
        raise RuntimeError(f"the memory's graph differs from torch by {difference:g}")
    metrics = evaluate_session(session, held=held, train=train)
    record = {"colour_memory": {
        "drawings": len(train), "neighbours": NEIGHBOURS, "dimensions": DIMENSIONS, "key_size": size // _POOL,
        "parity_max_difference": difference, "ranked_by_colour_mix": {
            "candidates": memory.candidates, "shape_weight": SHAPE_WEIGHT, "steps": MIX_QUICK_STEPS if quick
            else MIX_STEPS, "seed": MIX_SEED, "seconds": round(trained_in, 1)},
        "replaced_parent_memory": replaced}}
    had = {o.name for o in shipped.manifest.outputs}
    added = tuple(s for s in memory.specs(size) if s.name not in had)
    return shipped.derive(merged, output, version, hyperparameters=record, metrics=metrics, quick=quick,
                          added_outputs=added)


def main(argv: list[str] | None = None) -> int:
    from museforge.export.derived import derivation_main

    from .sketch import MODELS

    return derivation_main(
        argv, prog="python -m museforge.plugins.effect.sketch_memory", model="effect.sketch",
        models=MODELS / "sketch", derive=derive_version,
        description="Write the next effect.sketch version: a shipped version's network beside a colour "
                    "memory of the training drawings ranked by a colour-mix guess (trained here, about "
                    "6 minutes; a memory the version had is replaced), its held-out figures recomputed.",
        quick_help="a memory of 48 drawings, figures on 12 (a smoke test)")


if __name__ == "__main__":
    sys.exit(main())

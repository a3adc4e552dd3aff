"""How hard a generated tile is pushed towards its kind, chosen on validation draws.

Walls are the harder kind: about one in six generated walls came out as a floor to the kind
judge, though its look and frame were right. Every conditional norm of the generator adds a
kind vector and a kind x look vector (``tiles_gan._Condition``); moving each kind's away from
the other kind's after training, ``c(k) + s * (c(k) - c(other k))``, asks a wall to differ
from a floor of the same look by ``1 + 2s`` times what training learnt (guidance, as diffusion
models use it), and leaves their mean where it was. ``s`` is chosen on draws of their own
(``VALIDATION_SEEDS``; the recorded figures use ``tiles_quality.EVAL_SEED``), scoring the kind
and the look kept alike, so a strength that wins walls by losing looks is not picked.

Two places apply it: the recipe, to the generator it has just trained
(``tiles_gan.emphasise_kind``), and ``python -m museforge.plugins.image.tiles_emphasis
--from-version N``, to a shipped version's graph, writing the next version with its figures
recomputed (no torch needed).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .tiles_data import KINDS
from .tiles_quality import (
    EVAL_PER_CONDITION,
    EVAL_SEED,
    condition_accuracies,
    evaluate_session,
    generate_with_session,
    load_judge,
)

__all__ = ["FULL_STRENGTHS", "QUICK_STRENGTHS", "VALIDATION_SEEDS", "Emphasis", "away_from_other_kind",
           "choose_emphasis", "derive_version", "emphasised_graph"]

FULL_STRENGTHS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
QUICK_STRENGTHS = (0.0, 0.2)
# Each condition's draw seed is seed + up to 152 (tiles_quality), so these never meet each other
# or the evaluation's.
VALIDATION_SEEDS = (1001, 2002, 3003, 4004, 5005)
_PER_CONDITION = 48
_TABLES = (".kind.weight", ".pair.weight")  # a condition's kind-dependent embedding tables
if any(abs(seed - EVAL_SEED) <= 1000 for seed in VALIDATION_SEEDS):
    raise RuntimeError("validation draws must not meet the evaluation's")


def away_from_other_kind(table: np.ndarray, strength: float) -> np.ndarray:
    """Rows of each kind moved ``strength`` of their difference further from the other kind's.

    ``table`` is [kinds, C] or kind-major [kinds * looks, C] (a pair's row is kind * looks + look)."""
    if len(KINDS) != 2:
        raise ValueError("kind emphasis is defined against the one other kind")
    if strength < 0.0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    halves = table.reshape(len(KINDS), -1, table.shape[1])
    moved = (1.0 + strength) * halves - strength * halves[::-1]
    return np.asarray(moved.reshape(table.shape), dtype=table.dtype)


def emphasised_graph(model: Any, strength: float) -> Any:
    """A copy of an exported tiles generator (onnx.ModelProto) with every condition's kind
    tables moved as ``away_from_other_kind`` moves them; the export keeps their names."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    moved = 0
    for initializer in out.graph.initializer:
        if ".norm." in initializer.name and initializer.name.endswith(_TABLES):
            table = away_from_other_kind(numpy_helper.to_array(initializer), strength)
            initializer.CopyFrom(numpy_helper.from_array(table, initializer.name))
            moved += 1
    if not moved:
        raise ValueError("no kind embedding tables (blocks.N.norm.{gain,bias}.{kind,pair}.weight) "
                         "in the graph")
    return out


@dataclass(frozen=True)
class Emphasis:
    """The chosen strength and, per strength tried, the mean (kind, look) accuracy on validation draws."""

    strength: float
    tried: dict[float, tuple[float, float]]

    def record(self) -> dict[str, Any]:
        tried = {f"{s:g}": {"kind_accuracy": round(k, 4), "look_accuracy": round(lk, 4)}
                 for s, (k, lk) in self.tried.items()}
        return {"kind_emphasis": self.strength, "kind_emphasis_validation": tried}


def choose_emphasis(session_for: Callable[[float], Any], quick: bool = False) -> Emphasis:
    """The strength whose draws best keep both kind and look (the smaller on a tie).

    ``session_for(strength)`` is anything with ONNX Runtime's ``run`` that generates tiles at
    that strength: the emphasised torch generator at export, an ONNX session of an emphasised
    graph here. ``quick`` tries two strengths on a few draws: the path, not a choice.
    """
    if quick:
        return _choose(session_for, QUICK_STRENGTHS, VALIDATION_SEEDS[:1], 2)
    return _choose(session_for, FULL_STRENGTHS, VALIDATION_SEEDS, _PER_CONDITION)


def _choose(session_for: Callable[[float], Any], strengths: Sequence[float], seeds: Sequence[int],
            per_condition: int) -> Emphasis:
    judge = load_judge()
    tried: dict[float, tuple[float, float]] = {}
    for strength in strengths:
        session = session_for(strength)
        scores = []
        for seed in seeds:
            tiles, kind, look, _ = generate_with_session(session, per_condition, seed=seed)
            scores.append(condition_accuracies(tiles, kind, look, judge))
        kind_accuracy, look_accuracy = np.mean(scores, axis=0)
        tried[strength] = (float(kind_accuracy), float(look_accuracy))
    best = max(tried, key=lambda s: (sum(tried[s]), -s))
    return Emphasis(best, tried)


def _session(model: Any) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def derive_version(parent: Path, output: Path, version: int | None = None, quick: bool = False) -> Path:
    """``output/<version>/`` (by default the next version there): the shipped version at ``parent``
    with its kind emphasis chosen and applied, its figures recomputed from the new graph; the
    parent's training data, licences and settings carried over. Refuses a parent that already
    has an emphasis, and an existing version."""
    from museforge.export.derived import ShippedVersion

    shipped = ShippedVersion.read(parent)
    already = shipped.hyperparameters.get("kind_emphasis")
    if already:
        raise ValueError(f"{parent} already has a kind emphasis ({already}); "
                         "derive from a version without one")
    graph = shipped.graph()
    emphasis = choose_emphasis(lambda s: _session(emphasised_graph(graph, s)), quick=quick)
    derived = emphasised_graph(graph, emphasis.strength)
    metrics = evaluate_session(_session(derived), 4 if quick else EVAL_PER_CONDITION)
    return shipped.derive(derived, output, version, hyperparameters=emphasis.record(), metrics=metrics,
                          quick=quick)


def main(argv: list[str] | None = None) -> int:
    from museforge.export.derived import derivation_main

    from .tiles import MODELS_DIR

    return derivation_main(
        argv, prog="python -m museforge.plugins.image.tiles_emphasis", model="image.tiles",
        models=MODELS_DIR, derive=derive_version,
        description="Write the next image.tiles version: a shipped version with its kind emphasis "
                    "chosen on validation draws and applied, its held-out figures recomputed.",
        quick_help="two strengths on a few draws (a smoke test)")


if __name__ == "__main__":
    sys.exit(main())

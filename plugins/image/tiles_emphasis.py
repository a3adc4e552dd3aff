"""How hard a generated tile is pushed towards its kind (``tiles_gan.emphasise_kind``), chosen on validation.

Walls are the harder kind: about one in six generated walls came out as a floor to the kind
judge, though its look and frame were right. Moving the kind embeddings apart after training
fixes many of them without retraining. The strength is chosen here on draws of their own
(``VALIDATION_SEEDS``; the recipe's figures use ``tiles_quality.EVAL_SEED``), scoring the kind
and the look kept alike, so a strength that wins walls by losing looks is not picked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .tiles_quality import EVAL_SEED, condition_accuracies, generate_with_session, load_judge

__all__ = ["FULL_STRENGTHS", "QUICK_STRENGTHS", "VALIDATION_SEEDS", "Emphasis", "choose_emphasis"]

FULL_STRENGTHS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
QUICK_STRENGTHS = (0.0, 0.2)
# Each condition's draw seed is seed + up to 152 (tiles_quality), so these never meet each other
# or the evaluation's.
VALIDATION_SEEDS = (1001, 2002, 3003, 4004, 5005)
_PER_CONDITION = 48
assert all(abs(seed - EVAL_SEED) > 1000 for seed in VALIDATION_SEEDS)


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
    that strength: the emphasised torch generator at export, an ONNX session in checks.
    ``quick`` (the recipe's quick mode) tries two strengths on a few draws: the path, not a choice.
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

"""The learning-rate schedule every recipe trains with: linear warm-up, then half a cosine."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Schedule:
    """A linear warm-up over ``steps // warmup_divisor`` steps (at least one), times half a
    cosine over the whole run: from the full rate down to ``floor`` times it at the last step."""

    warmup_divisor: int = 50
    floor: float = 0.0

    def factor(self, steps: int) -> Callable[[int], float]:
        """The rate multiplier at scheduler step ``s`` (0 before the first optimiser step)."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        warmup = max(1, steps // self.warmup_divisor)
        floor = self.floor

        def at(s: int) -> float:
            # Written so that floor 0 gives bit for bit min(...) * 0.5 * (1 + cos): halving is
            # exact in binary floating point, so the grouping of the products does not matter.
            cosine = floor + (1.0 - floor) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
            return min(1.0, (s + 1) / warmup) * cosine

        return at

    def attach(self, optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
        """A scheduler to step once after every optimiser step."""
        return torch.optim.lr_scheduler.LambdaLR(optimizer, self.factor(steps))

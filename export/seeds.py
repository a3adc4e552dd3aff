"""Seeding, and the random streams of a training run (saved in checkpoints, restored on resume)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; returns a torch generator for data shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@dataclass
class Streams:
    """A run's own random streams: numpy for data (crops, picks), torch for noise and shuffling.

    Weight initialisation and anything else drawing from torch's global generator is covered
    by ``state()`` too, so a resumed run continues exactly where the saved one was.
    """

    numpy: np.random.Generator
    torch: torch.Generator
    seed: int | None = None  # what they were seeded with, when known (checkpoints record it)

    def state(self) -> dict[str, Any]:
        return {"numpy": self.numpy.bit_generator.state, "torch": self.torch.get_state(),
                "torch_global": torch.get_rng_state()}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.numpy.bit_generator.state = dict(state["numpy"])
        self.torch.set_state(state["torch"])
        torch.set_rng_state(state["torch_global"])


def seeded(seed: int) -> Streams:
    """Seed the global generators (weights built next draw from torch's) and return fresh streams."""
    generator = seed_everything(seed)
    return Streams(np.random.default_rng(seed), generator, seed)


@contextmanager
def forked(seed: int) -> Iterator[Streams]:
    """``seeded(seed)`` inside ``torch.random.fork_rng``: the caller's global torch state is kept."""
    with torch.random.fork_rng(devices=[]):
        yield seeded(seed)

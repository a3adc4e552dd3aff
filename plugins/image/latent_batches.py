"""Latent draws in model-call batches, shared by the generators that call their model in chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def batches(draws: Iterable[tuple[int, np.ndarray]], size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(output indices, stacked latents) of at most ``size`` draws each, in order."""
    pending: list[tuple[int, np.ndarray]] = []
    for draw in draws:
        pending.append(draw)
        if len(pending) == size:
            yield np.array([i for i, _ in pending]), np.stack([z for _, z in pending])
            pending = []
    if pending:
        yield np.array([i for i, _ in pending]), np.stack([z for _, z in pending])

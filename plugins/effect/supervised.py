"""Supervised image-to-image training shared by the restoration effects (torch; export path).

A recipe supplies ``make_batch(rng, size) -> (inputs, target)`` drawing random patches
from the training photographs; the export kit's ``fit`` does the rest: Adam with a
warm-up + cosine schedule, L1 loss (sharper than L2 for restoration), progress,
checkpoints and resume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from museforge.export.callbacks import Hooks
from museforge.export.fit import fit
from museforge.export.seeds import seeded

MakeBatch = Callable[[np.random.Generator, int], tuple[Sequence[np.ndarray], np.ndarray]]


def random_patches(photos: Sequence[np.ndarray], rng: np.random.Generator, count: int,
                   size: int, multiple: int = 1) -> np.ndarray:
    """``count`` random size x size crops ([N, 3, size, size]) with flips and quarter turns.

    Photographs are drawn in proportion to their area, so a large one is not
    under-sampled; crop corners are multiples of ``multiple`` (for aligned downscales).
    """
    areas = np.array([p.shape[0] * p.shape[1] for p in photos], np.float64)
    choice = rng.choice(len(photos), size=count, p=areas / areas.sum())
    out = np.empty((count, 3, size, size), np.float32)
    for i, k in enumerate(choice):
        photo = photos[k]
        y = rng.integers(0, (photo.shape[0] - size) // multiple + 1) * multiple
        x = rng.integers(0, (photo.shape[1] - size) // multiple + 1) * multiple
        crop = photo[y:y + size, x:x + size].transpose(2, 0, 1)
        crop = np.rot90(crop, k=int(rng.integers(4)), axes=(1, 2))
        if rng.integers(2):
            crop = crop[:, :, ::-1]
        out[i] = crop
    return out


def train_supervised(model: nn.Module, make_batch: MakeBatch, *, steps: int, batch: int,
                     seed: int, lr: float = 1e-3, hooks: Hooks | None = None,
                     loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> nn.Module:
    """Train ``model`` (which maps the batch's inputs to the target) in place; returns it in eval mode."""
    streams = seeded(seed)
    criterion = loss_fn or nn.functional.l1_loss

    def loss(step: int) -> tuple[Tensor, Mapping[str, float]]:
        inputs, target = make_batch(streams.numpy, batch)
        prediction = model(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs))
        value = criterion(prediction, torch.from_numpy(np.ascontiguousarray(target)))
        return value, {"loss": float(value.detach())}

    return fit(model, torch.optim.Adam(model.parameters(), lr=lr), loss, steps=steps, streams=streams,
               hooks=hooks)

"""Supervised image-to-image training shared by the restoration effects (torch; export path).

A recipe supplies ``make_batch(rng, size) -> (inputs, target)`` drawing random patches
from the training photographs; this loop does the rest: Adam with a cosine schedule,
L1 loss (sharper than L2 for restoration), progress and checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

ProgressFn = Callable[[int, int, dict[str, float]], None]
CheckpointFn = Callable[[int, Mapping[str, Any]], object]
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
                     seed: int, lr: float = 1e-3, progress: ProgressFn | None = None,
                     checkpoint: CheckpointFn | None = None, checkpoint_every: int = 500,
                     loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> nn.Module:
    """Train ``model`` (which maps the batch's inputs to the target) in place; returns it in eval mode."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    loss_fn = loss_fn or nn.functional.l1_loss
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    warmup = max(1, steps // 50)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    report_every = max(1, min(25, steps // 100))
    running = 0.0
    model.train()
    for step in range(1, steps + 1):
        inputs, target = make_batch(rng, batch)
        prediction = model(*(torch.from_numpy(np.ascontiguousarray(a)) for a in inputs))
        loss = loss_fn(prediction, torch.from_numpy(np.ascontiguousarray(target)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        running += (float(loss.detach()) - running) * (0.05 if step > 1 else 1.0)
        if progress and (step % report_every == 0 or step == steps):
            progress(step, steps, {"loss": running})
        if checkpoint and step % checkpoint_every == 0:
            checkpoint(step, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step})
    return model.eval()

"""A guess at a sketch's colour mix: line art in, the share of each of OpenMoji's 24 colours out
(export path; torch).

The colour memory (``sketch_memory``) finds the training drawings whose line art is shaped most
like a sketch; a circle around a glyph finds signs coloured red, purple, orange or blue alike,
and the region takes the grey between them. This small network reads the parts of the drawing
(eyes and a mouth, a glyph, leaves) and guesses how much of each palette colour its artist
would use; the memory then keeps, among the drawings nearest in shape, those whose colour mix
is nearest that guess (``RankedColourMemory``). Trained on the training split only, with the
drawings posed and roughened as in ``sketch_batches``, the target being the drawing's own
palette shares (unchanged by the pose).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .sketch_batches import posed_pair
from .sketch_data import SketchPairs
from .sketch_palette import OPENMOJI_PALETTE

__all__ = ["FULL_STEPS", "QUICK_STEPS", "ColourMix", "colour_mix_of", "train_colour_mix"]

COLOURS = len(OPENMOJI_PALETTE)
FULL_STEPS = 3000  # about 6 minutes here; chosen on a validation split of the training drawings
QUICK_STEPS = 4
_BATCH = 64
_LR = 2e-3
_CLEAN = 0.3  # share of drawings seen as drawn, the rest posed and roughened
_WIDTHS = (1, 32, 64, 96, 128)
# 2.7 MB of weights. 64 (1.3 MB) read 0.448 against 0.444 on the validation split, and on the
# held-out drawings 0.427 against 0.414 at variation 0 (version 5 kept 256).
_HIDDEN = 256


class ColourMix(nn.Module):
    """(N, 1, 64, 64) ink -> (N, 24) logits of the palette shares (softmax: the guessed mix)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in pairwise(_WIDTHS))
        self.norms = nn.ModuleList(nn.GroupNorm(8, b) for b in _WIDTHS[1:])
        # The 4 x 4 layout is kept (no global pooling): where a part sits says what it is.
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(_WIDTHS[-1] * 16, _HIDDEN),
                                  nn.ReLU(), nn.Linear(_HIDDEN, COLOURS))

    def forward(self, lines: Tensor) -> Tensor:
        x = lines
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.relu(norm(conv(x)))
        return self.head(x)


def colour_mix_of(answers: np.ndarray) -> np.ndarray:
    """(N, 24) float32: each drawing's share of painted pixels per palette colour, from its
    ``sketch_memory.colour_answers`` (NONE and unpainted pixels left out; nothing painted: zeros)."""
    rows = answers.astype(np.int64)
    counts = np.stack([np.bincount(row[row < COLOURS], minlength=COLOURS) for row in rows])
    return (counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)).astype(np.float32)


def train_colour_mix(pairs: SketchPairs, mixes: np.ndarray, *, steps: int, seed: int,
                     on_step: Callable[[int, float], None] | None = None) -> ColourMix:
    """A ``ColourMix`` fitted to ``mixes`` (``colour_mix_of`` the pairs) by cross-entropy."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ColourMix()
    optimiser = torch.optim.AdamW(model.parameters(), _LR, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, _LR, total_steps=max(steps, 1))
    model.train()
    for step in range(steps):
        chosen = rng.integers(0, len(pairs), _BATCH)
        drawn = []
        for i in chosen:
            lines = pairs.lines[i].astype(np.float32) / np.float32(255.0)
            if rng.random() >= _CLEAN:
                colour = pairs.colour[i].transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
                lines = posed_pair(lines, colour, rng)[0]
            drawn.append(lines)
        logits = model(torch.from_numpy(np.stack(drawn)[:, None]))
        loss = -(torch.from_numpy(mixes[chosen]) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if on_step is not None:
            on_step(step, loss.item())
    return model.eval()

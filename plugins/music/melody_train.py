"""Training the melody GRU (torch; export path): batches, transposition, the loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from museforge.export.callbacks import Hooks
from museforge.export.fit import fit
from museforge.export.schedule import Schedule
from museforge.export.seeds import seeded

from .melody_net import MelodyNet
from .theory import MODES
from .tokens import METRES, PAD, STYLES, Encoded, Melody, encode, fits_range, transpose_events

MAX_TOKENS = 320  # longer pieces train on their first MAX_TOKENS tokens


def transposed(melody: Melody, tonic: int) -> tuple[Encoded, int] | None:
    """``melody`` moved to ``tonic`` by the smaller shift (up or down) that stays in range."""
    up = (tonic - melody.tonic) % 12
    for shift in sorted((up, up - 12), key=abs):
        events = transpose_events(melody.events, shift)
        if fits_range(events):
            return encode(events, melody.metre), tonic
    return None


def conditioning(melody: Melody, tonic: int) -> tuple[int, int, int, int]:
    return STYLES.index(melody.style), tonic, MODES.index(melody.mode), METRES.index(melody.metre)


def collate(items: Sequence[tuple[Encoded, tuple[int, int, int, int]]]) -> dict[str, torch.Tensor]:
    """Pad to the longest; ``targets`` is the next token (PAD = ignored)."""
    length = min(MAX_TOKENS + 1, max(len(e.tokens) for e, _ in items))
    batch = len(items)
    arrays = {name: np.zeros((batch, length - 1), np.int64)
              for name in ("tokens", "positions", "bars_left", "targets")}
    for row, (encoded, _) in enumerate(items):
        n = min(length, len(encoded.tokens))
        arrays["tokens"][row, :n - 1] = encoded.tokens[:n - 1]
        arrays["positions"][row, :n - 1] = encoded.positions[:n - 1]
        arrays["bars_left"][row, :n - 1] = encoded.bars_left[:n - 1]
        arrays["targets"][row, :n - 1] = encoded.tokens[1:n]
    out = {name: torch.from_numpy(a) for name, a in arrays.items()}
    cond = np.array([c for _, c in items], np.int64)
    for column, name in enumerate(("style", "tonic", "mode", "metre")):
        out[name] = torch.from_numpy(cond[:, column].copy())
    return out


def sample_batch(by_style: Sequence[Sequence[Melody]], rng: np.random.Generator,
                 size: int) -> dict[str, torch.Tensor]:
    """Styles drawn equally (the chorales are the smallest set), each piece in a random key."""
    items: list[tuple[Encoded, tuple[int, int, int, int]]] = []
    while len(items) < size:
        pool = by_style[int(rng.integers(len(by_style)))]
        melody = pool[int(rng.integers(len(pool)))]
        moved = transposed(melody, int(rng.integers(12)))
        if moved is not None:
            items.append((moved[0], conditioning(melody, moved[1])))
    return collate(items)


def sequence_nll(model: MelodyNet, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed negative log-likelihood (nats) over non-pad targets, and their count."""
    logits, _ = model(batch["tokens"], batch["positions"], batch["bars_left"], batch["style"],
                      batch["tonic"], batch["mode"], batch["metre"])
    targets = batch["targets"]
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                       ignore_index=PAD, reduction="sum")
    return loss, (targets != PAD).sum()


def train_melody(model: MelodyNet, train: Sequence[Melody], *, steps: int, batch: int, seed: int,
                 lr: float, hooks: Hooks | None = None, checkpoint_every: int = 250) -> MelodyNet:
    """Adam with warm-up and cosine decay to 5% on the mean per-token cross-entropy; the gradient
    norm is clipped at 1 (recurrent nets spike early)."""
    streams = seeded(seed)
    by_style = [[m for m in train if m.style == s] for s in STYLES]
    if any(not pool for pool in by_style):
        raise ValueError("every style needs training melodies")

    def loss(step: int) -> tuple[Tensor, Mapping[str, float]]:
        total, count = sequence_nll(model, sample_batch(by_style, streams.numpy, batch))
        value = total / count
        return value, {"nll": float(value.detach())}

    fit(model, torch.optim.Adam(model.parameters(), lr=lr), loss, steps=steps, streams=streams,
        schedule=Schedule(warmup_divisor=30, floor=0.05), clip=1.0, hooks=hooks,
        checkpoint_every=checkpoint_every)
    return model

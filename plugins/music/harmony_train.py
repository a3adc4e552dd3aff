"""Training the harmony GRU (torch; export path): chorale batches in random keys, the loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from museforge.export.callbacks import Hooks
from museforge.export.fit import fit
from museforge.export.schedule import Schedule
from museforge.export.seeds import seeded

from .chorale_voices import Chorale
from .harmony_features import LOWER_VOICES, MINOR_LIKE, STEP_INPUTS, step_features, target_index
from .harmony_net import HarmonyNet

IGNORE = -100
SHIFTS = range(-4, 5)  # transpositions drawn per piece: every key, voices still singable


def piece_arrays(chorale: Chorale, shift: int = 0) -> dict[str, np.ndarray]:
    """Inputs and targets of one chorale moved by ``shift`` semitones (rests stay rests)."""
    pitches = np.where(chorale.pitches >= 0, chorale.pitches + shift, -1)
    bar_steps = chorale.bar_steps
    bars = -(-pitches.shape[1] // bar_steps)
    arrays = step_features(pitches[0], chorale.onsets[0], (chorale.tonic + shift) % 12, chorale.metre,
                           bar_steps, bars)
    for row, voice in enumerate(("soprano", *LOWER_VOICES)):
        if voice != "soprano":
            arrays[f"target_{voice}"] = target_index(pitches[row], voice, IGNORE)
    return arrays


def collate(items: Sequence[tuple[dict[str, np.ndarray], int, int]]) -> dict[str, Tensor]:
    """Pad to the longest piece (targets padded with IGNORE); ``tonic``/``minor`` per piece."""
    length = max(len(arrays["soprano"]) for arrays, _, _ in items)
    out: dict[str, Tensor] = {}
    for name in (*STEP_INPUTS, *(f"target_{v}" for v in LOWER_VOICES)):
        fill = IGNORE if name.startswith("target_") else 0
        block = np.full((len(items), length), fill, np.int64)
        for row, (arrays, _, _) in enumerate(items):
            block[row, :len(arrays[name])] = arrays[name]
        out[name] = torch.from_numpy(block)
    out["tonic"] = torch.tensor([tonic for _, tonic, _ in items], dtype=torch.int64)
    out["minor"] = torch.tensor([minor for _, _, minor in items], dtype=torch.int64)
    return out


def batch_of(chorales: Sequence[Chorale], shifts: Sequence[int]) -> dict[str, Tensor]:
    return collate([(piece_arrays(c, s), (c.tonic + s) % 12, MINOR_LIKE[c.mode])
                    for c, s in zip(chorales, shifts, strict=True)])


def voice_losses(model: HarmonyNet, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Summed cross-entropy (nats) per voice over its sounding, in-range steps, and the count."""
    logits, _ = model({name: batch[name] for name in STEP_INPUTS}, batch["tonic"], batch["minor"])
    losses = {}
    for voice in LOWER_VOICES:
        target = batch[f"target_{voice}"]
        losses[voice] = nn.functional.cross_entropy(logits[voice].reshape(-1, logits[voice].shape[-1]),
                                                    target.reshape(-1), ignore_index=IGNORE, reduction="sum")
        losses[f"{voice}_count"] = (target != IGNORE).sum()
    return losses


def train_harmony(model: HarmonyNet, train: Sequence[Chorale], *, steps: int, batch: int, seed: int,
                  lr: float, hooks: Hooks | None = None) -> HarmonyNet:
    """Adam, warm-up and cosine decay to 5%, on the mean per-note cross-entropy of the three voices."""
    streams = seeded(seed)
    if not train:
        raise ValueError("the harmony model needs training chorales")

    def loss(step: int) -> tuple[Tensor, Mapping[str, float]]:
        rng = streams.numpy
        picked = [train[int(i)] for i in rng.integers(len(train), size=batch)]
        parts = voice_losses(model, batch_of(picked, [int(rng.choice(SHIFTS)) for _ in picked]))
        value = sum(parts[v] for v in LOWER_VOICES) / sum(parts[f"{v}_count"] for v in LOWER_VOICES)
        assert isinstance(value, Tensor)
        return value, {"nll": float(value.detach())}

    fit(model, torch.optim.Adam(model.parameters(), lr=lr), loss, steps=steps, streams=streams,
        schedule=Schedule(warmup_divisor=30, floor=0.05), clip=1.0, hooks=hooks, checkpoint_every=250)
    return model

"""Training the shot network on composed clips (torch; export path)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from museforge.export.callbacks import Hooks
from museforge.export.fit import fit
from museforge.export.seeds import seeded

from .shot_data import Sample
from .shot_net import ShotNet

WINDOW = 160
POSITIVE_WEIGHT = (8.0, 2.0)  # hard cuts are one frame in ~45; gradual frames one in ~6


def _batch(data: Sequence[Sample], rng: np.random.Generator, size: int) -> tuple[Tensor, Tensor]:
    features = np.zeros((size, WINDOW, data[0].features.shape[1]), np.float32)
    target = np.zeros((size, 2, WINDOW), np.float32)
    for i in range(size):
        sample = data[int(rng.integers(len(data)))]
        length = len(sample.features)
        start = int(rng.integers(0, max(1, length - WINDOW + 1)))
        part = sample.features[start:start + WINDOW]
        features[i, :len(part)] = part
        target[i, :, :len(part)] = sample.target[:, start:start + WINDOW]
    return torch.from_numpy(features), torch.from_numpy(target)


def train_shot_net(data: Sequence[Sample], *, steps: int, batch: int, seed: int, lr: float,
                   hooks: Hooks | None = None) -> ShotNet:
    model = ShotNet()
    stacked = np.concatenate([s.features for s in data])
    with torch.no_grad():
        model.mean.copy_(torch.from_numpy(stacked.mean(axis=0)))
        model.scale.copy_(torch.from_numpy(stacked.std(axis=0) + 1e-3))
    streams = seeded(seed)
    weight = torch.tensor(POSITIVE_WEIGHT)[None, :, None]

    def loss(step: int) -> tuple[Tensor, Mapping[str, float]]:
        features, target = _batch(data, streams.numpy, batch)
        value = nn.functional.binary_cross_entropy_with_logits(
            model.logits(features), target, pos_weight=weight)
        return value, {"loss": float(value.detach())}

    return fit(model, torch.optim.Adam(model.parameters(), lr=lr), loss, steps=steps, streams=streams,
               hooks=hooks)


def probabilities(model: ShotNet, features: np.ndarray) -> np.ndarray:
    """[T, 2] for one clip's features (the exported graph's computation, in torch)."""
    with torch.no_grad():
        return model(torch.from_numpy(features[None]))[0].numpy()

"""The shot boundary network: a small temporal CNN over per-frame features (torch; export path).

Input ``features`` [batch, time, NUM_FEATURES] as ``shot_features`` makes them; output
``boundary`` [batch, time, 2], the probabilities that frame t starts a new shot after a
hard cut and that it lies inside a gradual transition. Normalisation (from the training
features) and the operating points chosen on validation clips are part of the graph, so
0.5 is the decision threshold of both outputs when serving.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .shot_features import NUM_FEATURES

WIDTH = 48
DILATIONS = (1, 2, 4, 8, 1)
RECEPTIVE_RADIUS = 2 + sum(DILATIONS)  # frames each side the output depends on


class _Block(nn.Module):
    def __init__(self, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(WIDTH, WIDTH, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(WIDTH, WIDTH, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mix(torch.relu(self.conv(x)))


class ShotNet(nn.Module):
    mean: Tensor
    scale: Tensor
    offset: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(NUM_FEATURES))
        self.register_buffer("scale", torch.ones(NUM_FEATURES))
        self.register_buffer("offset", torch.zeros(2))  # logit of each head's operating point
        self.stem = nn.Conv1d(NUM_FEATURES, WIDTH, 5, padding=2)
        self.blocks = nn.Sequential(*(_Block(d) for d in DILATIONS))
        self.head = nn.Conv1d(WIDTH, 2, 1)

    def logits(self, features: Tensor) -> Tensor:
        """[batch, time, F] -> [batch, 2, time] raw logits (training)."""
        x = ((features - self.mean) / self.scale).transpose(1, 2)
        return self.head(self.blocks(torch.relu(self.stem(x))))

    def forward(self, features: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(features) - self.offset[None, :, None]).transpose(1, 2)

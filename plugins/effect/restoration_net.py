"""The conditioned restoration network shared by effect.denoise and effect.restore.

FFDNet-style (Zhang et al. 2018): the image is folded 2x2 into 12 half-resolution
channels (PixelUnshuffle), a per-image condition (noise level or JPEG quality) is
broadcast as one more constant channel, a plain stack of 3x3 convolutions runs at half
resolution (4x cheaper than full resolution, twice the receptive field per layer), and
the unfolded output is a correction added to the input: out = x + unfold(body(...)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WIDTH = 48
BLOCKS = 4  # residual blocks of two 3x3 convs
DEPTH = 2 * BLOCKS + 2  # 3x3 convolutions at half resolution, head and tail included
# Each half-resolution 3x3 conv sees one more half-res pixel each way (2 input pixels);
# the 2x2 fold adds one more input pixel. Serving halos must be at least this.
RECEPTIVE_RADIUS = 2 * DEPTH + 1
MULTIPLE = 2  # input sides must be even (the fold)


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(x))): two 3x3 convolutions at one width (the upscaler's body too)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(width, width, 3, padding=1)
        self.b = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.b(F.relu(self.a(x)))


class ConditionedRestorer(nn.Module):
    """([N, 3, H, W] in [0, 1], condition [N]) -> [N, 3, H, W] in [0, 1]; H, W even.

    ``condition`` is mapped to the network's level channel as (condition - offset) / scale,
    so the exported model takes it in the user's units (sigma on 0-255, JPEG quality).
    """

    def __init__(self, offset: float, scale: float, width: int = WIDTH, blocks: int = BLOCKS) -> None:
        super().__init__()
        self.offset, self.scale = float(offset), float(scale)
        self.head = nn.Conv2d(4 * 3 + 1, width, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, 4 * 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the identity: training learns only the correction
        nn.init.zeros_(self.tail.bias)  # type: ignore[arg-type]  # a conv built with bias=True

    def forward(self, image: Tensor, condition: Tensor) -> Tensor:
        folded = F.pixel_unshuffle(image, 2)
        level = ((condition.to(folded.dtype) - self.offset) / self.scale).reshape(-1, 1, 1, 1)
        level_map = level.expand(-1, 1, folded.shape[2], folded.shape[3])
        features = F.relu(self.body(self.head(torch.cat([folded, level_map], dim=1))))
        correction = self.tail(features)
        return torch.clamp(image + F.pixel_shuffle(correction, 2), 0.0, 1.0)


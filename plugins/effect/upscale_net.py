"""The upscaling network: a residual CNN in low-resolution space with a sub-pixel output.

It predicts the detail missing from a bicubic upscale: out = bicubic(x) + shuffle(body(x)).
All convolutions run at the input resolution (cheap), and a final PixelShuffle turns
scale^2 x 3 channels into the larger image (Shi et al. 2016, ESPCN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .restoration_net import ResidualBlock

WIDTH = 32
BLOCKS = 4  # residual blocks of two 3x3 convs
RECEPTIVE_RADIUS = 1 + 2 * BLOCKS + 1 + 2  # head, blocks, tail, bicubic support (input px)


class Upscaler(nn.Module):
    """[N, 3, H, W] in [0, 1] -> [N, 3, H*scale, W*scale] in [0, 1]."""

    def __init__(self, scale: int, width: int = WIDTH, blocks: int = BLOCKS) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as plain bicubic
        nn.init.zeros_(self.tail.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        detail = F.pixel_shuffle(self.tail(F.relu(self.body(self.head(x)))), self.scale)
        return torch.clamp(base + detail, 0.0, 1.0)

"""Layers that wrap around the torus, shared by the seamless generators (export path: imports torch).

Circular padding before a 'valid' convolution and periodic upsampling commute with shifts of
the torus, so a network built from them maps a periodic input to a periodic output: the
image tiles seamlessly whatever size of field it was given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TorusConv", "circular_pad", "torus_upsample"]


def circular_pad(x: Tensor, pad: int) -> Tensor:
    """Wrap-around padding from slices and concatenation.

    Exports as Slice + Concat with negative starts, so no spatial size is baked into
    the ONNX graph (unlike a Pad whose pads would be computed from traced shapes).
    """
    x = torch.cat([x[:, :, :, -pad:], x, x[:, :, :, :pad]], dim=3)
    return torch.cat([x[:, :, -pad:, :], x, x[:, :, :pad, :]], dim=2)


class TorusConv(nn.Conv2d):
    """A 3x3 convolution on the torus: circular padding, then a 'valid' convolution."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True) -> None:
        super().__init__(c_in, c_out, 3, padding=0, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(circular_pad(x, 1))


def torus_upsample(x: Tensor) -> Tensor:
    """Bilinear 2x upsampling on the torus.

    Plain bilinear clamps at the border, which would break the wrap; interpolating a
    circularly padded copy and cutting the padding off gives exact periodic bilinear.
    """
    up = F.interpolate(circular_pad(x, 1), scale_factor=2.0, mode="bilinear", align_corners=False)
    return up[:, :, 2:-2, 2:-2]

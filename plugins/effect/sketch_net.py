"""The networks of ``effect.sketch``: a U-Net that colours line art, its style encoder and a patch critic.

Export path only (torch). The generator is pix2pix's U-Net with BicycleGAN's latent: it maps
line art (darkness), colour hints (RGBA where the artist scribbled or where a result is kept,
plus a presence channel) and an 8-number style code to a straight RGBA image. In training the
code comes from the encoder, which reads the artist's own colour version, so a seed's random
code at serving time means "another colouring an artist might have chosen"; the patch critic
scores the result against the line art every 8 pixels (each score sees ~38 x 38 pixels).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from .sketch_hints import HINT_CHANNELS

__all__ = ["HINT_CHANNELS", "MULTIPLE", "STYLE", "SketchCritic", "SketchGenerator", "StyleEncoder"]

STYLE = 8  # numbers in a style code
MULTIPLE = 16  # four halvings: image sides must divide by it
_WIDTHS = (16, 32, 64, 128, 128)  # at 64, 32, 16, 8 and 4 px for a 64 px drawing


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.GroupNorm(8, c_out), nn.LeakyReLU(0.2))


class _Up(nn.Module):
    """Upsample, join the skip connection and the style code, two convolutions."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.style = nn.Linear(STYLE, c_in)
        self.first = _conv(c_in + c_skip, c_out)
        self.second = _conv(c_out, c_out)

    def forward(self, x: Tensor, skip: Tensor, style: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest") + self.style(style)[:, :, None, None]
        return self.second(self.first(torch.cat([x, skip], dim=1)))


class SketchGenerator(nn.Module):
    """(lines [N,1,H,W], hints [N,5,H,W], style [N,8]) -> image [N,4,H,W] straight RGBA in [0, 1]."""

    def __init__(self, widths: tuple[int, ...] = _WIDTHS) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(1 + HINT_CHANNELS, widths[0]), _conv(widths[0], widths[0]))
        self.down = nn.ModuleList(
            nn.Sequential(_conv(a, b, stride=2), _conv(b, b)) for a, b in itertools.pairwise(widths))
        self.up = nn.ModuleList(_Up(b, a, a) for a, b in itertools.pairwise(widths))
        self.out = nn.Conv2d(widths[0], 4, 3, 1, 1)

    def forward(self, lines: Tensor, hints: Tensor, style: Tensor) -> Tensor:
        x = self.stem(torch.cat([lines, hints], dim=1))
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in reversed(self.up):
            x = block(x, skips.pop(), style)
        return torch.sigmoid(self.out(x))


class StyleEncoder(nn.Module):
    """(lines, colour RGBA) of a drawing -> (mean, log-variance) of its style code (training only)."""

    def __init__(self) -> None:
        super().__init__()
        widths = (5, 32, 64, 96, 128)
        self.body = nn.Sequential(*(nn.Sequential(nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2))
                                    for a, b in itertools.pairwise(widths)))
        self.head = nn.Linear(widths[-1], 2 * STYLE)

    def forward(self, lines: Tensor, colour: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(torch.cat([lines, colour], dim=1)).mean(dim=(2, 3))
        mean, log_var = self.head(features).chunk(2, dim=1)
        return mean, log_var.clamp(-8.0, 4.0)


class SketchCritic(nn.Module):
    """(lines, RGBA) -> one real/fake score every 8 pixels (spectrally normalised, hinge loss)."""

    def __init__(self) -> None:
        super().__init__()
        widths = (5, 48, 96, 160)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers += [spectral_norm(nn.Conv2d(a, b, 4, 2, 1)), nn.LeakyReLU(0.2)]
        layers.append(spectral_norm(nn.Conv2d(widths[-1], 1, 3, 1, 1)))
        self.body = nn.Sequential(*layers)

    def forward(self, lines: Tensor, image: Tensor) -> Tensor:
        # The critic sees colour premultiplied by alpha: colour under transparent pixels means nothing.
        premultiplied = torch.cat([image[:, :3] * image[:, 3:], image[:, 3:]], dim=1)
        return self.body(torch.cat([lines, premultiplied], dim=1))

"""Class-conditional GAN for ``image.icons``: noise + category -> 64x64 RGBA emoji-style icons.

Export path only: this module imports torch, so the server never imports it; it
serves the ONNX export of :class:`IconsGenerator` instead.

The generator draws colour and coverage (alpha) as separate channels; the critic sees them
premultiplied (colour x alpha, alpha), as a compositor would, so colour under transparent
pixels costs nothing and an edge is judged by how it blends. Projection critic with an
auxiliary category classifier on real icons (as in ``digits_gan``); random translations of
real and fake alike (transparent fill) curb the critic's overfitting on 1,600 icons.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from museforge.export.callbacks import Hooks
from museforge.export.gan import Adversarial, EpochBatches, hinge_critic_loss, recompute_batchnorm
from museforge.export.seeds import Streams, forked

from .icons_data import CATEGORIES, ICON, IconsSplit

__all__ = ["FULL_EPOCHS", "LATENT_DIM", "QUICK_EPOCHS", "IconsCritic", "IconsGenerator", "premultiplied",
           "train_icons_gan"]

LATENT_DIM = 128
NUM_CLASSES = len(CATEGORIES)
QUICK_EPOCHS = 1
FULL_EPOCHS = 90

_G_WIDTHS = (192, 96, 48, 24, 12)  # at 4, 8, 16, 32 and 64 px
_BATCH = 32
_LR_G = 2e-4  # Adam with beta1 = 0 (museforge.export.gan.BETAS)
_LR_D = 4e-4
_AUX_WEIGHT_D = 1.0
_AUX_WEIGHT_G = 0.3
_MAX_SHIFT = 4  # px of random translation in the critic's augmentation
_EMA_DECAY = 0.999


class _ConditionalNorm(nn.Module):
    """BatchNorm without its own affine, then a per-category scale and shift (a fixed affine in eval)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(NUM_CLASSES, channels)
        self.bias = nn.Embedding(NUM_CLASSES, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, category: Tensor) -> Tensor:
        if self.training:
            x = self.norm(x)
        else:
            # The running statistics as one per-channel affine map: the same arithmetic as
            # BatchNorm in eval, and it exports where ONNX's BatchNormalization cannot (after
            # the seed's reshape the exporter no longer knows the channel count).
            mean, var = cast(Tensor, self.norm.running_mean), cast(Tensor, self.norm.running_var)
            scale = torch.rsqrt(var + self.norm.eps)
            x = (x - mean[None, :, None, None]) * scale[None, :, None, None]
        gain, bias = self.gain(category)[:, :, None, None], self.bias(category)[:, :, None, None]
        out: Tensor = x * gain + bias
        return out


class _Up(nn.Module):
    """Nearest 2x upsample -> 3x3 conv -> conditional norm -> ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm = _ConditionalNorm(c_out)

    def forward(self, x: Tensor, category: Tensor) -> Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest")), category))


class IconsGenerator(nn.Module):
    """(z [B, 128], category [B]) -> [B, 4, 64, 64] straight RGBA in [0, 1]."""

    def __init__(self, widths: tuple[int, ...] = _G_WIDTHS) -> None:
        super().__init__()
        self.base = widths[0]
        self.embed = nn.Embedding(NUM_CLASSES, 32)
        self.project = nn.Linear(LATENT_DIM + 32, widths[0] * 16, bias=False)
        self.norm = _ConditionalNorm(widths[0])
        self.ups = nn.ModuleList(_Up(c_in, c_out) for c_in, c_out in itertools.pairwise(widths))
        self.out = nn.Conv2d(widths[-1], 4, 3, padding=1)

    def forward(self, z: Tensor, category: Tensor) -> Tensor:
        h = self.project(torch.cat([z, self.embed(category)], dim=1)).view(-1, self.base, 4, 4)
        h = F.relu(self.norm(h, category))
        for up in self.ups:
            h = up(h, category)
        return torch.sigmoid(self.out(h))


def premultiplied(rgba: Tensor) -> Tensor:
    """Straight RGBA [B, 4, H, W] -> (colour x alpha, alpha): what the critic judges."""
    return torch.cat([rgba[:, :3] * rgba[:, 3:], rgba[:, 3:]], dim=1)


class IconsCritic(nn.Module):
    """(premultiplied icons [B, 4, 64, 64], category [B]) -> (score [B], category logits [B, 9])."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 4
        for c in widths:  # 64 -> 32 -> 16 -> 8 -> 4
            layers += [spectral_norm(nn.Conv2d(c_in, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c_in = c
        layers += [spectral_norm(nn.Conv2d(c_in, c_in, 3, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Linear(c_in, 1))
        self.project = spectral_norm(nn.Embedding(NUM_CLASSES, c_in))
        self.classify = spectral_norm(nn.Linear(c_in, NUM_CLASSES))

    def forward(self, x: Tensor, category: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x * 2.0 - 1.0).sum(dim=(2, 3))
        score = self.score(h).squeeze(1) + (self.project(category) * h).sum(dim=1)
        return score, self.classify(h)


def _shift(x: Tensor, gen: torch.Generator) -> Tensor:
    """Translate each icon by up to _MAX_SHIFT px, filling with transparent black."""
    n, _, h, w = x.shape
    padded = F.pad(x, (_MAX_SHIFT,) * 4)
    dy = torch.randint(0, 2 * _MAX_SHIFT + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * _MAX_SHIFT + 1, (n,), generator=gen)
    c = x.shape[1]
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, c, h, w + 2 * _MAX_SHIFT)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def train_icons_gan(split: IconsSplit, *, seed: int, epochs: int, hooks: Hooks | None = None,
                    checkpoint_every: int = 20, statistics_batches: int = 16) -> IconsGenerator:
    """Train on ``split.train`` only; returns the EMA generator in eval mode (seeded throughout)."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    with forked(seed) as streams:
        return _train(split, streams, epochs, hooks, checkpoint_every, statistics_batches)


def _train(split: IconsSplit, streams: Streams, epochs: int, hooks: Hooks | None,
           checkpoint_every: int, statistics_batches: int) -> IconsGenerator:
    gen = streams.torch
    real_x = premultiplied(torch.from_numpy(split.train.unit()).permute(0, 3, 1, 2).contiguous())
    real_y = torch.from_numpy(split.train.category)
    weights = torch.bincount(real_y, minlength=NUM_CLASSES).double()  # categories as often as in the data
    batches = EpochBatches(len(real_x), min(_BATCH, len(real_x)), gen)
    gan = Adversarial.create(IconsGenerator(), IconsCritic(), lr_g=_LR_G, lr_d=_LR_D, ema_decay=_EMA_DECAY)
    g, d = cast(IconsGenerator, gan.generator), gan.critic

    def draw(n: int) -> tuple[Tensor, Tensor]:
        return (torch.randn(n, LATENT_DIM, generator=gen),
                torch.multinomial(weights, n, replacement=True, generator=gen))

    def step(i: int) -> Mapping[str, float]:
        idx = batches.batch(i)
        x, y = real_x[idx], real_y[idx]
        z, fake_y = draw(len(idx))
        fake = premultiplied(g(z, fake_y))
        score_real, logits_real = d(_shift(x, gen), y)
        score_fake, _ = d(_shift(fake.detach(), gen), fake_y)
        loss_d = hinge_critic_loss(score_real, score_fake) + _AUX_WEIGHT_D * F.cross_entropy(logits_real, y)
        gan.critic_step(loss_d)
        score_fake, logits_fake = d(_shift(fake, gen), fake_y)
        loss_g = -score_fake.mean() + _AUX_WEIGHT_G * F.cross_entropy(logits_fake, fake_y)
        gan.generator_step(loss_g, i)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    ema = cast(IconsGenerator, gan.run(epochs * batches.per_epoch, step, streams, hooks,
                                       checkpoint_every * batches.per_epoch))
    recompute_batchnorm(ema, lambda: draw(256), statistics_batches)
    return ema


assert 4 * 2 ** (len(_G_WIDTHS) - 1) == ICON  # four doublings from the 4x4 seed reach the icon size

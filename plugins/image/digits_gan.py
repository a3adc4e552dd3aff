"""Class-conditional GAN for ``image.digits``: noise + digit label -> 28x28 grayscale.

Export path only: this module imports torch, so the server never imports it; it
serves the ONNX export of :class:`DigitsGenerator` instead.

The discriminator combines a projection head (Miyato & Koyama 2018) with an
auxiliary classifier trained on real images only: projection keeps samples diverse,
the classifier term pushes the generator hard towards the requested digit. Both nets
are small enough to train in minutes on two CPU cores.

The defaults are version 2's shape (real MNIST strokes: wider generator, a discriminator
that looks at full resolution first); ``V1_CONFIG`` is version 1's (upscaled 8x8 digits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from museforge.export.callbacks import Hooks
from museforge.export.gan import Adversarial, EpochBatches, hinge_critic_loss, recompute_batchnorm
from museforge.export.seeds import Streams, forked

from .digits_data import DIGITS_SIZE, DigitsSplit

__all__ = [
    "FULL_EPOCHS",
    "LATENT_DIM",
    "NUM_CLASSES",
    "QUICK_EPOCHS",
    "V1_CONFIG",
    "V2_CONFIG",
    "DigitsDiscriminator",
    "DigitsGenerator",
    "GanConfig",
    "train_digits_gan",
]

LATENT_DIM = 100
NUM_CLASSES = 10
# Enough for a few optimiser steps: proves the pipeline in tests, not the quality.
QUICK_EPOCHS = 1
# Version 2: 4,000 MNIST digits, 62 steps an epoch, 4,340 steps in all: what fits ~25
# minutes on two shared CPU cores (one torch thread; see docs/models.md).
FULL_EPOCHS = 70

# Training hyperparameters of the shipped model.
_LR_G = 2e-4  # TTUR-style rates, Adam with beta1 = 0 (museforge.export.gan.BETAS)
_LR_D = 4e-4
_AUX_WEIGHT = 1.0  # weight of the critic's auxiliary-classifier cross-entropy on real digits
_MAX_SHIFT = 2  # pixels of random translation in the discriminator's augmentation
_EMA_DECAY = 0.999  # the returned generator is an exponential average of the weights

_BASE = DIGITS_SIZE // 4  # 7x7 seed maps, upsampled twice to 28x28


@dataclass(frozen=True)
class GanConfig:
    """What differs between the versions' GANs."""

    g_channels: int  # generator width at 7x7 (halved at 14x14 and again at 28x28)
    d_channels: int
    full_resolution: bool  # a stride-1 conv at 28x28 before the critic downsamples
    # The generator's auxiliary-classifier weight: 1.0 drew clean but look-alike MNIST
    # digits (diversity ratio 0.49 after 620 steps); 0.1 keeps the digits right (the
    # projection head conditions too) with more varied slant and stroke width (0.55).
    aux_weight_g: float


V1_CONFIG = GanConfig(g_channels=64, d_channels=64, full_resolution=False, aux_weight_g=1.0)
V2_CONFIG = GanConfig(g_channels=96, d_channels=64, full_resolution=True, aux_weight_g=0.1)


class DigitsGenerator(nn.Module):
    """(z [B, 100] float32, label [B] int64) -> images [B, 1, 28, 28] in [0, 1].

    Only ONNX-friendly ops: Gather (embedding), MatMul/Gemm, Resize (bilinear), Conv,
    BatchNorm (folded in eval) and ReLU, ending in a sigmoid so the exported graph
    already outputs displayable pixel values.
    """

    def __init__(self, channels: int = V2_CONFIG.g_channels, embed_dim: int = 32) -> None:
        super().__init__()
        self.channels = channels
        c = channels
        self.embed = nn.Embedding(NUM_CLASSES, embed_dim)
        # Bias is redundant before BatchNorm.
        self.project = nn.Linear(LATENT_DIM + embed_dim, c * _BASE * _BASE, bias=False)
        self.body = nn.Sequential(
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            # Bilinear upsample + conv rather than transposed conv: the training images
            # are bilinear upscales themselves, and there are no checkerboard artefacts.
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(c, c // 2, 3, padding=1, bias=False),  # 14x14
            nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(c // 2, c // 4, 3, padding=1, bias=False),  # 28x28
            nn.BatchNorm2d(c // 4),
            nn.ReLU(inplace=True),
            nn.Conv2d(c // 4, 1, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: Tensor, label: Tensor) -> Tensor:
        h = self.project(torch.cat([z, self.embed(label)], dim=1))
        # -1, not a Python batch size: keeps the ONNX batch axis dynamic.
        h = h.view(-1, self.channels, _BASE, _BASE)
        out: Tensor = self.body(h)
        return out


class DigitsDiscriminator(nn.Module):
    """Spectrally normalised conditional critic: (images, labels) -> (score, class logits)."""

    def __init__(self, channels: int = V2_CONFIG.d_channels,
                 full_resolution: bool = V2_CONFIG.full_resolution) -> None:
        super().__init__()
        c = channels
        # Upscaled 8x8 digits (version 1) carry no detail a 28x28 layer could see, so it
        # downsampled at once; real MNIST strokes are a pixel or two wide, so version 2
        # looks at full resolution first.
        first: list[nn.Module] = [spectral_norm(nn.Conv2d(1, c // 4, 3, padding=1)),
                                  nn.LeakyReLU(0.2, inplace=True)] if full_resolution else []
        self.features = nn.Sequential(
            *first,
            spectral_norm(nn.Conv2d(c // 4 if full_resolution else 1, c // 2, 4, stride=2, padding=1)),  # 14
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(c // 2, c, 4, stride=2, padding=1)),  # 7x7
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(c, 2 * c, 3, padding=1)),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.score = spectral_norm(nn.Linear(2 * c, 1))
        self.project = spectral_norm(nn.Embedding(NUM_CLASSES, 2 * c))
        self.classify = spectral_norm(nn.Linear(2 * c, NUM_CLASSES))

    def forward(self, x: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        # Global sum pooling: the usual choice for projection discriminators.
        h = self.features(x).sum(dim=(2, 3))
        score = self.score(h).squeeze(1) + (self.project(label) * h).sum(dim=1)
        return score, self.classify(h)


def _shift(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Translate each image by a random whole number of pixels, zero-filling the border.

    Applied to real and fake alike before the discriminator (differentiable
    augmentation), so it curbs discriminator overfitting on 1.4k images without
    teaching the generator to draw shifted digits.
    """
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, 1, h, w + 2 * max_shift)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, 1, h, w)
    return padded.gather(2, rows).gather(3, cols)


def train_digits_gan(
    split: DigitsSplit,
    *,
    seed: int,
    epochs: int,
    batch_size: int = 64,
    hooks: Hooks | None = None,
    checkpoint_every: int = 25,
    config: GanConfig = V2_CONFIG,
) -> DigitsGenerator:
    """Train the conditional GAN on ``split.train_x``/``train_y`` only; returns G in eval mode.

    Every random draw comes from ``seed`` (weights via a forked global RNG, data order,
    noise and augmentation via one ``torch.Generator``), so a run is reproducible on
    the same machine, thread count and library versions. ``hooks`` get progress every
    few steps and a checkpoint every ``checkpoint_every`` epochs.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    with forked(seed) as streams:
        return _train(split, streams, epochs, batch_size, hooks, checkpoint_every, config)


def _train(split: DigitsSplit, streams: Streams, epochs: int, batch_size: int, hooks: Hooks | None,
           checkpoint_every: int, config: GanConfig) -> DigitsGenerator:
    gen = streams.torch
    real_x = torch.from_numpy(np.ascontiguousarray(split.train_x, dtype=np.float32)).unsqueeze(1)
    real_y = torch.from_numpy(np.ascontiguousarray(split.train_y, dtype=np.int64))
    batches = EpochBatches(len(real_x), batch_size, gen)
    gan = Adversarial.create(DigitsGenerator(config.g_channels),
                             DigitsDiscriminator(config.d_channels, config.full_resolution),
                             lr_g=_LR_G, lr_d=_LR_D, ema_decay=_EMA_DECAY)
    g, d = gan.generator, gan.critic

    def step(i: int) -> Mapping[str, float]:
        idx = batches.batch(i)
        x, y = real_x[idx], real_y[idx]
        z = torch.randn(len(idx), LATENT_DIM, generator=gen)
        fake_y = torch.randint(0, NUM_CLASSES, (len(idx),), generator=gen)
        # Discriminator: hinge loss, plus the auxiliary classifier on real images
        # only (training it on fakes would reward the generator for easy digits).
        # One generator forward serves both updates: the critic sees it detached, the
        # generator's step then backpropagates through it into the updated critic.
        fake = g(z, fake_y)
        score_real, logits_real = d(_shift(x, _MAX_SHIFT, gen), y)
        score_fake, _ = d(_shift(fake.detach(), _MAX_SHIFT, gen), fake_y)
        loss_d = hinge_critic_loss(score_real, score_fake) + _AUX_WEIGHT * F.cross_entropy(logits_real, y)
        gan.critic_step(loss_d)
        # Generator: fool the critic and be classified as the requested digit.
        score_fake, logits_fake = d(_shift(fake, _MAX_SHIFT, gen), fake_y)
        loss_g = -score_fake.mean() + config.aux_weight_g * F.cross_entropy(logits_fake, fake_y)
        gan.generator_step(loss_g, i)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    ema = gan.run(epochs * batches.per_epoch, step, streams, hooks, checkpoint_every * batches.per_epoch)
    recompute_batchnorm(ema, lambda: (torch.randn(256, LATENT_DIM, generator=gen),
                                      torch.arange(256) % NUM_CLASSES))
    return cast(DigitsGenerator, ema)

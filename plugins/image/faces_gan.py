"""DCGAN-style generator for ``image.faces``: noise -> 32x32 grayscale face.

Export path only: this module imports torch, so the server never imports it; it
serves the ONNX export of :class:`FacesGenerator` instead.

There are only 80 training faces, so the discriminator would memorise them within a
few hundred steps and stop teaching the generator. Three things keep it useful:
spectral normalisation (a Lipschitz bound on every layer), data augmentation of the
real faces (mirror, small shifts, exposure jitter: faces the generator may well
draw), and differentiable augmentation (Zhao et al. 2020, "DiffAugment") applied to
real *and* generated images before the discriminator: translation, cutout and
exposure changes it must see through, without the generator learning to draw them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from museforge.export.callbacks import Hooks
from museforge.export.gan import Adversarial, EpochBatches, hinge_critic_loss, recompute_batchnorm
from museforge.export.seeds import Streams, forked

from .face_data import FACES_SIZE, FaceSplit

__all__ = [
    "FULL_EPOCHS",
    "LATENT_DIM",
    "QUICK_EPOCHS",
    "FacesDiscriminator",
    "FacesGenerator",
    "train_faces_gan",
]

LATENT_DIM = 128
# A few optimiser steps: proves the pipeline in tests, not the quality.
QUICK_EPOCHS = 2
# What the shipped model is trained with (an epoch is one pass over the training faces
# and their mirrors: 5 steps at batch 32).
FULL_EPOCHS = 2000

# Training hyperparameters of the shipped model.
_LR_G = 2e-4  # Adam with beta1 = 0 (museforge.export.gan.BETAS), as in SNGAN/BigGAN
_LR_D = 2e-4
_EMA_DECAY = 0.999  # the returned generator is an exponential average of the weights
# Augmentation of the real faces: what the generator learns to draw too.
_DATA_SHIFT = 2  # pixels, edge-replicated
_DATA_BRIGHTNESS = 0.08  # +- added to every pixel
_DATA_CONTRAST = 0.15  # +- relative change of contrast around the image mean
# DiffAugment, before every discriminator call on real and fake alike.
_DA_SHIFT = 4  # pixels (1/8 of the side, as in DiffAugment), zero-filled
_DA_CUTOUT = 12  # side of the square erased at a random place
_DA_BRIGHTNESS = 0.2
_DA_CONTRAST = 0.4

_BASE = 4  # 4x4 seed maps, doubled three times to 32x32
_SIZE = FACES_SIZE


class FacesGenerator(nn.Module):
    """z [B, 128] float32 -> images [B, 1, 32, 32] in [0, 1].

    Only ONNX-friendly ops: Gemm, Reshape (with -1 for the batch), ConvTranspose,
    Conv, BatchNorm (folded in eval), ReLU and a final sigmoid, so the exported graph
    outputs displayable pixels and each sample is independent of its batch-mates.
    """

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        self.channels = channels
        c = channels

        def up(c_in: int, c_out: int) -> list[nn.Module]:
            # DCGAN's stride-2 transposed conv: half the compute of upsample + 3x3 conv
            # on two CPU cores; kernel 4 (a multiple of the stride) avoids checkerboards.
            return [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),  # no bias before BN
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]

        self.project = nn.Linear(LATENT_DIM, c * _BASE * _BASE, bias=False)
        self.body = nn.Sequential(
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            *up(c, c // 2),  # 8x8
            *up(c // 2, c // 4),  # 16x16
            *up(c // 4, c // 8),  # 32x32
            nn.Conv2d(c // 8, 1, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: Tensor) -> Tensor:
        # -1, not a Python batch size: keeps the ONNX batch axis dynamic.
        h = self.project(z).view(-1, self.channels, _BASE, _BASE)
        out: Tensor = self.body(h)
        return out


class FacesDiscriminator(nn.Module):
    """Spectrally normalised critic: images [B, 1, 32, 32] in [0, 1] -> score [B]."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels
        # Stride 2 from the first layer: full-resolution layers cost most of the
        # compute and the faces carry 25x25 worth of detail anyway.
        self.features = nn.Sequential(
            spectral_norm(nn.Conv2d(1, c, 4, stride=2, padding=1)),  # 16x16
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)),  # 8x8
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1)),  # 4x4
            nn.LeakyReLU(0.2, inplace=True),
        )
        # A linear layer over the whole 4x4 map, not global pooling: where the eyes
        # and mouth sit is the essence of a face.
        self.score = spectral_norm(nn.Linear(4 * c * _BASE * _BASE, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x * 2.0 - 1.0)  # centred inputs
        out: Tensor = self.score(h.flatten(1)).squeeze(1)
        return out


def _translate(x: Tensor, max_shift: int, gen: torch.Generator, *, zero_fill: bool) -> Tensor:
    """Shift each image by a random whole number of pixels in [-max_shift, max_shift].

    The border is zero-filled (DiffAugment) or replicated from the edge (data
    augmentation: real faces should not grow black bars). Gathers, so gradients flow.
    """
    n, c, h, w = x.shape
    dy = torch.randint(-max_shift, max_shift + 1, (n, 1, 1), generator=gen)
    dx = torch.randint(-max_shift, max_shift + 1, (n, 1, 1), generator=gen)
    ys = torch.arange(h).view(1, h, 1) - dy  # source row of each output row
    xs = torch.arange(w).view(1, 1, w) - dx
    index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).view(n, 1, h * w).expand(n, c, h * w)
    out = x.flatten(2).gather(2, index).view(n, c, h, w)
    if zero_fill:
        inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(1)
        out = out * inside
    return out


def _exposure(x: Tensor, brightness: float, contrast: float, gen: torch.Generator) -> Tensor:
    """Random per-image brightness offset and contrast scaling around the image mean."""
    n = x.shape[0]
    offset = (torch.rand(n, 1, 1, 1, generator=gen) * 2.0 - 1.0) * brightness
    scale = 1.0 + (torch.rand(n, 1, 1, 1, generator=gen) * 2.0 - 1.0) * contrast
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * scale + mean + offset


def _cutout(x: Tensor, size: int, gen: torch.Generator) -> Tensor:
    """Erase one size x size square per image; its centre may lie near the border."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1, 1), generator=gen)
    cx = torch.randint(0, w, (n, 1, 1), generator=gen)
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    erased = ((ys - cy).abs() <= size // 2) & ((xs - cx).abs() <= size // 2)
    return x * (~erased).unsqueeze(1)


def _diff_augment(x: Tensor, gen: torch.Generator) -> Tensor:
    x = _exposure(x, _DA_BRIGHTNESS, _DA_CONTRAST, gen)
    x = _translate(x, _DA_SHIFT, gen, zero_fill=True)
    return _cutout(x, _DA_CUTOUT, gen)


def _augment_real(x: Tensor, gen: torch.Generator) -> Tensor:
    x = _translate(x, _DATA_SHIFT, gen, zero_fill=False)
    return _exposure(x, _DATA_BRIGHTNESS, _DATA_CONTRAST, gen).clamp(0.0, 1.0)


def train_faces_gan(
    split: FaceSplit,
    *,
    seed: int,
    epochs: int,
    batch_size: int = 32,
    hooks: Hooks | None = None,
    checkpoint_every: int = 250,
) -> FacesGenerator:
    """Train the GAN on ``split.train_faces`` only (and their mirrors); returns G in eval mode.

    Every random draw comes from ``seed`` (weights via a forked global RNG; data
    order, noise and augmentation via one ``torch.Generator``), so a run is
    reproducible on the same machine, thread count and library versions. ``hooks``
    get progress every few steps and a checkpoint every ``checkpoint_every`` epochs.
    """
    n = 2 * len(split.train_faces)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not 2 <= batch_size <= n:
        # BatchNorm needs at least two samples per batch.
        raise ValueError(f"batch_size must be in [2, {n}], got {batch_size}")
    with forked(seed) as streams:
        return _train(split, streams, epochs, batch_size, hooks, checkpoint_every)


def _train(split: FaceSplit, streams: Streams, epochs: int, batch_size: int, hooks: Hooks | None,
           checkpoint_every: int) -> FacesGenerator:
    gen = streams.torch
    faces = torch.from_numpy(np.ascontiguousarray(split.train_faces, dtype=np.float32)).unsqueeze(1)
    # Mirrors are part of the data rather than a random flip: every epoch shows both.
    real = torch.cat([faces, faces.flip(3)])
    batches = EpochBatches(len(real), batch_size, gen)
    gan = Adversarial.create(FacesGenerator(), FacesDiscriminator(), lr_g=_LR_G, lr_d=_LR_D,
                             ema_decay=_EMA_DECAY)
    g, d = gan.generator, gan.critic

    def step(i: int) -> Mapping[str, float]:
        idx = batches.batch(i)
        x = _augment_real(real[idx], gen)
        z = torch.randn(len(idx), LATENT_DIM, generator=gen)
        # One generator pass per step: the discriminator sees it detached, the
        # generator step backpropagates through it (G has not changed in between).
        fake = g(z)
        score_real = d(_diff_augment(x, gen))
        score_fake = d(_diff_augment(fake.detach(), gen))
        loss_d = hinge_critic_loss(score_real, score_fake)
        gan.critic_step(loss_d)
        loss_g = -d(_diff_augment(fake, gen)).mean()
        gan.generator_step(loss_g, i)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
                "d_real": score_real.mean().item(), "d_fake": score_fake.mean().item()}

    ema = gan.run(epochs * batches.per_epoch, step, streams, hooks, checkpoint_every * batches.per_epoch)
    recompute_batchnorm(ema, lambda: (torch.randn(256, LATENT_DIM, generator=gen),))
    return cast(FacesGenerator, ema)

"""Spatial GAN for ``image.texture``: a noise field + family -> a seamless texture of any size.

Export path only: this module imports torch, so the server never imports it; it
serves the ONNX export of :class:`TextureGenerator` instead.

The generator is fully convolutional (a spatial GAN, Jetchev et al. 2016) and every
spatial op in it wraps around: circular padding before each convolution and nearest
upsampling, which commute with shifts of the torus. The network is therefore
translation-equivariant on a torus, so a periodic noise field of h x w cells gives an
image that tiles seamlessly with period (h * SCALE) x (w * SCALE), and a larger field
simply gives a larger texture. The discriminator is a conditional patch critic with a
projection head at every output location.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from museforge.export.callbacks import Hooks
from museforge.export.gan import Adversarial, hinge_critic_loss, recompute_batchnorm
from museforge.export.seeds import Streams, forked

from .texture_data import FAMILIES, TextureSplit
from .torus_layers import TorusConv, torus_upsample

__all__ = [
    "FULL_EPOCHS",
    "NOISE_CHANNELS",
    "NUM_FAMILIES",
    "QUICK_EPOCHS",
    "SCALE",
    "STEPS_PER_EPOCH",
    "TextureDiscriminator",
    "TextureGenerator",
    "train_texture_gan",
]

SCALE = 16  # output pixels per noise cell along each axis
_COARSE_NOISE = 32
_PIXEL_NOISE = False
NOISE_CHANNELS = _COARSE_NOISE + (4 + 16 + 64 + 256 if _PIXEL_NOISE else 0)
_G_WIDTHS = (128, 128, 64, 32, 16)
_STEM_CONVS = 2
NUM_FAMILIES = len(FAMILIES)
STEPS_PER_EPOCH = 20
QUICK_EPOCHS = 1
QUICK_STEPS = 5  # of the quick epoch's STEPS_PER_EPOCH: enough to prove the pipeline
FULL_EPOCHS = 75

# Training hyperparameters of the shipped model.
_CROP = 128  # px of real texture the critic sees; a brick is about 30 x 100 px
_FAKE_MARGIN = 1  # extra noise cell around a fake crop, so fakes are not 128-px tori
_BATCH_PER_FAMILY = 3
_LR_G = 2e-4  # Adam with beta1 = 0 (museforge.export.gan.BETAS)
_LR_D = 2e-4
_EMA_DECAY = 0.999
_EMA_WARMUP = 10.0  # the average's decay is n / (n + 10) after n updates, until it reaches 0.999

# Which dihedral transforms keep a family's look. Brick courses run vertically in the
# photograph (and in the held-out strip): flips keep that, a quarter turn would not.
# Grass and gravel have no preferred direction and diffuse light, so all eight apply.
_TRANSFORMS: dict[str, tuple[int, ...]] = {
    "brick": (0, 1, 4, 5),  # identity, mirror, half turn, vertical flip
    "grass": tuple(range(8)),
    "gravel": tuple(range(8)),
}

class _ConditionalNorm(nn.Module):
    """BatchNorm without its own affine, then a per-family scale and shift (as in BigGAN).

    In eval mode this is a fixed per-channel affine map, i.e. purely local, so the
    exported generator behaves the same at every output size.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(NUM_FAMILIES, channels)
        self.bias = nn.Embedding(NUM_FAMILIES, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, family: Tensor) -> Tensor:
        gain = self.gain(family)[:, :, None, None]
        bias = self.bias(family)[:, :, None, None]
        out: Tensor = self.norm(x) * gain + bias
        return out


class _Block(nn.Module):
    """[2x upsample] -> torus conv -> [+ per-pixel noise] -> conditional norm -> ReLU.

    The per-pixel noise (as in StyleGAN) gives fine detail its own randomness, so grass
    blades and stone edges need not be decoded from the 16-px cell's code; its strength
    is learned per family and channel, starting at zero.
    """

    def __init__(self, c_in: int, c_out: int, upsample: bool, pixel_noise: bool) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = TorusConv(c_in, c_out, bias=False)  # bias is redundant before the norm
        self.noise_gain = nn.Embedding(NUM_FAMILIES, c_out) if pixel_noise else None
        if self.noise_gain is not None:
            nn.init.zeros_(self.noise_gain.weight)
        self.norm = _ConditionalNorm(c_out)

    def forward(self, x: Tensor, family: Tensor, noise: Tensor | None) -> Tensor:
        if self.upsample:
            x = torus_upsample(x)
        h = self.conv(x)
        if self.noise_gain is not None and noise is not None:
            h = h + self.noise_gain(family)[:, :, None, None] * noise
        return F.relu(self.norm(h, family))


class TextureGenerator(nn.Module):
    """(noise [B, NOISE_CHANNELS, h, w] float32, family [B] int64) -> [B, 1, h*SCALE, w*SCALE] in [0, 1].

    The noise channels are i.i.d. standard normal; the first ``_COARSE_NOISE`` drive the
    16-px cell grid, and after them come 4, 16, 64 and 256 channels that DepthToSpace
    turns into one per-pixel noise map at 2x, 4x, 8x and 16x. One field thus carries the
    randomness of every scale, and shifting it by a cell shifts the image by SCALE px.
    Only shift-commuting ops (circular slices, 3x3 conv, Resize, DepthToSpace,
    per-channel affine, ReLU), ending in a sigmoid so the graph outputs pixel values.
    """

    def __init__(
        self, widths: tuple[int, ...] | None = None, stem_convs: int | None = None,
        pixel_noise: bool | None = None,
    ) -> None:
        super().__init__()
        widths = _G_WIDTHS if widths is None else widths
        stem_convs = _STEM_CONVS if stem_convs is None else stem_convs
        pixel_noise = _PIXEL_NOISE if pixel_noise is None else pixel_noise
        if len(widths) != 5:
            raise ValueError("widths must give 5 levels: the noise grid and 4 upsamplings (SCALE = 16)")
        self.pixel_noise = pixel_noise
        self.noise_channels = _COARSE_NOISE + (4 + 16 + 64 + 256 if pixel_noise else 0)
        blocks = [_Block(_COARSE_NOISE, widths[0], upsample=False, pixel_noise=False)]
        blocks += [_Block(widths[0], widths[0], upsample=False, pixel_noise=False)
                   for _ in range(stem_convs - 1)]
        blocks += [_Block(c_in, c_out, upsample=True, pixel_noise=pixel_noise)
                   for c_in, c_out in itertools.pairwise(widths)]
        self.blocks = nn.ModuleList(blocks)
        self.out = TorusConv(widths[-1], 1)

    def forward(self, noise: Tensor, family: Tensor) -> Tensor:
        h = noise[:, :_COARSE_NOISE]
        offset, factor = _COARSE_NOISE, 1
        for block in self.blocks:
            pixel: Tensor | None = None
            if block.upsample:
                factor *= 2
                if self.pixel_noise:
                    pixel = F.pixel_shuffle(noise[:, offset : offset + factor * factor], factor)
                    offset += factor * factor
            h = block(h, family, pixel)
        return torch.sigmoid(self.out(h))


class TextureDiscriminator(nn.Module):
    """Conditional patch critic: (images [B, 1, H, W], family [B]) -> scores [B, H/16 - 1, W/16 - 1].

    Four stride-2 convolutions and two 3x3 ones give each score a receptive field of
    about 140 px: a few bricks, dozens of stones. The projection term (Miyato & Koyama
    2018) is applied at every location, so each patch is judged for its family.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in widths:
            # No padding: critics see photograph crops, whose borders are not periodic.
            layers += [spectral_norm(nn.Conv2d(c_in, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c_in = c
        layers += [spectral_norm(nn.Conv2d(c_in, c_in, 3)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Conv2d(c_in, 1, 1))
        self.project = spectral_norm(nn.Embedding(NUM_FAMILIES, c_in))

    def forward(self, x: Tensor, family: Tensor) -> Tensor:
        # Centre pixels on 0 so the first layer need not learn the offset.
        h = self.features(x * 2.0 - 1.0)
        proj = (self.project(family)[:, :, None, None] * h).sum(dim=1)
        out: Tensor = self.score(h)[:, 0] + proj
        return out


def _transform(crop: np.ndarray, op: int) -> np.ndarray:
    """The dihedral op ``op`` in 0..7: ``op // 2`` quarter turns, then a mirror if ``op`` is odd."""
    out = np.rot90(crop, op // 2)
    return out[:, ::-1] if op % 2 else out


class _Crops:
    """Random augmented crops of the training regions, drawn from one seeded numpy RNG."""

    def __init__(self, split: TextureSplit, rng: np.random.Generator) -> None:
        self.images = [split.train[fam] for fam in FAMILIES]
        self.ops = [_TRANSFORMS.get(fam, (0,)) for fam in FAMILIES]
        self.rng = rng
        for fam, image in zip(FAMILIES, self.images, strict=True):
            if min(image.shape) < _CROP:
                raise ValueError(f"training region of {fam!r} is smaller than {_CROP} px: {image.shape}")

    def sample(self, family: np.ndarray) -> Tensor:
        out = np.empty((len(family), 1, _CROP, _CROP), dtype=np.float32)
        for i, fam in enumerate(family):
            image = self.images[fam]
            y = self.rng.integers(0, image.shape[0] - _CROP + 1)
            x = self.rng.integers(0, image.shape[1] - _CROP + 1)
            op = self.ops[fam][self.rng.integers(0, len(self.ops[fam]))]
            out[i, 0] = _transform(image[y : y + _CROP, x : x + _CROP], int(op))
        return torch.from_numpy(out)


def _fake_crops(g: TextureGenerator, family: Tensor, gen: torch.Generator) -> Tensor:
    """Generate on a torus a little larger than a crop, then cut a crop at a random offset.

    The margin keeps every fake from being a 128-px torus the critic never sees in real
    data, and the random sub-cell offset stops the critic from relying on (and the
    generator from hiding artefacts at) a fixed 16-px grid phase.
    """
    cells = _CROP // SCALE + _FAKE_MARGIN
    noise = torch.randn(len(family), g.noise_channels, cells, cells, generator=gen)
    full = g(noise, family)
    y, x = torch.randint(0, cells * SCALE - _CROP + 1, (2,), generator=gen).tolist()
    return full[:, :, y : y + _CROP, x : x + _CROP]


def train_texture_gan(
    split: TextureSplit,
    *,
    seed: int,
    epochs: int,
    hooks: Hooks | None = None,
    checkpoint_every: int = 25,
    steps: int | None = None,
) -> TextureGenerator:
    """Train on random crops of ``split.train`` only; returns the EMA generator in eval mode.

    One epoch is STEPS_PER_EPOCH optimiser steps of both nets. Every random draw comes
    from ``seed`` (weights via a forked global RNG, noise via a ``torch.Generator``,
    crops via a numpy ``Generator``), so a run is reproducible on the same machine,
    thread count and library versions. ``hooks`` get progress every few steps and a
    checkpoint every ``checkpoint_every`` epochs. ``steps`` cuts a run short (quick runs).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    missing = [fam for fam in FAMILIES if fam not in split.train]
    if missing:
        raise ValueError(f"split has no training region for {missing}")
    with forked(seed) as streams:
        return _train(split, streams, steps or epochs * STEPS_PER_EPOCH, hooks, checkpoint_every)


def _train(split: TextureSplit, streams: Streams, steps: int, hooks: Hooks | None,
           checkpoint_every: int) -> TextureGenerator:
    gen = streams.torch
    crops = _Crops(split, streams.numpy)
    family_np = np.repeat(np.arange(NUM_FAMILIES), _BATCH_PER_FAMILY)
    family = torch.from_numpy(family_np)
    # channels_last: oneDNN's convolutions with few channels at high resolution (the
    # generator's last levels, most of the cost) run markedly faster in NHWC.
    gan = Adversarial.create(
        TextureGenerator().to(memory_format=torch.channels_last),  # type: ignore[call-overload, unused-ignore]
        TextureDiscriminator().to(memory_format=torch.channels_last),  # type: ignore[call-overload, unused-ignore]
        lr_g=_LR_G, lr_d=_LR_D, ema_decay=_EMA_DECAY, ema_warmup=_EMA_WARMUP)
    g, d = cast(TextureGenerator, gan.generator), gan.critic

    def step(i: int) -> Mapping[str, float]:
        real = crops.sample(family_np).to(memory_format=torch.channels_last)
        # One generator pass per step serves both updates (the generator is most of the
        # cost): the critic learns from it detached, then the generator backpropagates
        # through the updated critic into the same, still valid, graph.
        fake = _fake_crops(g, family, gen)
        # Discriminator: hinge loss on every patch score.
        loss_d = hinge_critic_loss(d(real, family), d(fake.detach(), family))
        gan.critic_step(loss_d)
        loss_g = -d(fake, family).mean()
        gan.generator_step(loss_g, i)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    ema = cast(TextureGenerator, gan.run(steps, step, streams, hooks,
                                         checkpoint_every * STEPS_PER_EPOCH))
    cells = _CROP // SCALE + _FAKE_MARGIN
    families = torch.arange(4 * NUM_FAMILIES) % NUM_FAMILIES
    recompute_batchnorm(ema, lambda: (torch.randn(len(families), ema.noise_channels, cells, cells,
                                                  generator=gen), families))
    return ema.to(memory_format=torch.contiguous_format)

"""Seamless pixel-art tile GAN for ``image.tiles``: a noise field + kind + look -> 32x32 RGB tiles.

Export path only: this module imports torch, so the server never imports it; it
serves the ONNX export of :class:`TilesGenerator` instead.

The generator is fully convolutional on a torus (``torus_layers``), so a field of
4 x 4 noise cells gives one 32x32 tile that wraps onto itself, and a larger field gives
a sheet of tiles that joins seamlessly inside and around. Unlike a texture, a tile has a
frame: Crawl's bricks and slabs line up with the tile's edges. A learned embedding of
each cell's place within its tile (4 x 4 phases), repeated over the field, tells the
network where tile edges fall, so a sheet is a grid of tiles rather than a shapeless
texture. Nearest-neighbour upsampling keeps the pixels hard-edged, as pixel art is.
The critic is a projection critic with an auxiliary classifier on real tiles (as in
``digits_gan``). Conditions are factorised: every kind and every look has its own embedding
(plus one per pair), so what makes a wall a wall is learnt from all ~1,000 walls, not from the
~170 of one look.
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

from .tiles_data import KINDS, LOOKS, TILE, TilesSplit
from .tiles_emphasis import away_from_other_kind
from .torus_layers import TorusConv

__all__ = ["CELLS", "FULL_EPOCHS", "NOISE_CHANNELS", "QUICK_EPOCHS", "SCALE", "TilesCritic",
           "TilesGenerator", "emphasise_kind", "train_tiles_gan"]

SCALE = 8  # output pixels per noise cell
CELLS = TILE // SCALE  # noise cells along a tile's side
NOISE_CHANNELS = 32
NUM_PAIRS = len(KINDS) * len(LOOKS)  # a pair's index is kind * len(LOOKS) + look
QUICK_EPOCHS = 1
FULL_EPOCHS = 130

_G_WIDTHS = (128, 96, 64, 32)  # at 4, 8, 16 and 32 px a tile
_PHASE_CHANNELS = 16
_BATCH = 32
_LR_G = 2e-4  # Adam with beta1 = 0 (museforge.export.gan.BETAS)
_LR_D = 4e-4
_AUX_WEIGHT_D = 1.0  # the critic's classifiers (kind, look) on real tiles
_AUX_WEIGHT_KIND = 1.5  # the generator's pull towards the requested kind (0.5: 61% of walls judged walls)
_AUX_WEIGHT_LOOK = 0.2  # and look
_AUX_WEIGHT_PATCHES = 1.0  # and towards the kind in every 8 x 8 patch (version 3)
_EMA_DECAY = 0.999
# Real Crawl tiles often frame themselves (slab borders, a darker rim): their step across the
# wrap-around edge is 1.55x the interior one. A tile for a tileable floor should not show
# where it repeats, so the generator pays for any difference between its edge step and its interior
# step (a seam ratio away from 1), at this weight.
_SEAM_WEIGHT = 2.0
_SEAM_SLACK = 0.1


class _Condition(nn.Module):
    """A vector per condition: the kind's + the look's + the pair's embedding."""

    def __init__(self, channels: int, initial: float) -> None:
        super().__init__()
        self.kind = nn.Embedding(len(KINDS), channels)
        self.look = nn.Embedding(len(LOOKS), channels)
        self.pair = nn.Embedding(NUM_PAIRS, channels)
        nn.init.constant_(self.kind.weight, initial)
        nn.init.zeros_(self.look.weight)
        nn.init.zeros_(self.pair.weight)

    def forward(self, kind: Tensor, look: Tensor) -> Tensor:
        out: Tensor = self.kind(kind) + self.look(look) + self.pair(kind * len(LOOKS) + look)
        return out[:, :, None, None]


class _ConditionalNorm(nn.Module):
    """BatchNorm without its own affine, then a per-condition scale and shift (a fixed affine in eval)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = _Condition(channels, 1.0)
        self.bias = _Condition(channels, 0.0)

    def forward(self, x: Tensor, kind: Tensor, look: Tensor) -> Tensor:
        out: Tensor = self.norm(x) * self.gain(kind, look) + self.bias(kind, look)
        return out


def _phase_index(length: Tensor, period: int) -> Tensor:
    """0, 1, .., period-1, 0, 1, ... for ``length`` positions (Range + Mod in ONNX, any field size)."""
    return torch.remainder(torch.arange(length), period)  # type: ignore[call-overload, unused-ignore]


def _tiled(pattern: Tensor, height: int | Tensor, width: int | Tensor) -> Tensor:
    """A [C, P, P] pattern repeated over a height x width field (whole tiles, as the field is)."""
    period = pattern.shape[1]
    rows = _phase_index(torch.as_tensor(height), period)
    cols = _phase_index(torch.as_tensor(width), period)
    return pattern.index_select(1, rows).index_select(2, cols)


class _Block(nn.Module):
    """[nearest 2x upsample] -> + where-in-the-tile bias -> torus conv -> conditional norm -> ReLU.

    Crawl's walls are framed: mortar, bevels and slab edges sit on exact pixels of the tile.
    Position known only at the 4 x 4-cell scale blurs that frame by a few pixels after three
    upsamplings (the kind judge then takes such walls for floors, as it does real walls shifted
    by half a tile), so every block adds a learnt bias per pixel of the tile at its own scale.
    """

    def __init__(self, c_in: int, c_out: int, upsample: bool, period: int) -> None:
        super().__init__()
        self.upsample = upsample
        self.where = nn.Parameter(torch.zeros(c_in, period, period))  # zero: starts as a plain block
        self.conv = TorusConv(c_in, c_out, bias=False)  # bias is redundant before the norm
        self.norm = _ConditionalNorm(c_out)

    def forward(self, x: Tensor, kind: Tensor, look: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # shift-commuting, hard-edged
        x = x + _tiled(self.where, x.shape[2], x.shape[3])[None]
        return F.relu(self.norm(self.conv(x), kind, look))


class TilesGenerator(nn.Module):
    """(noise [B, 32, h, w], kind [B], look [B]) -> [B, 3, 8h, 8w] RGB in [0, 1].

    A field of h x w cells is (h/4) x (w/4) tiles; every op commutes with shifts of the
    torus by whole tiles, so the output wraps around.
    """

    def __init__(self, widths: tuple[int, ...] = _G_WIDTHS) -> None:
        super().__init__()
        self.phase = nn.Parameter(torch.randn(_PHASE_CHANNELS, CELLS, CELLS))
        blocks = [_Block(NOISE_CHANNELS + _PHASE_CHANNELS, widths[0], upsample=False, period=CELLS),
                  _Block(widths[0], widths[0], upsample=False, period=CELLS)]
        blocks += [_Block(c_in, c_out, upsample=True, period=CELLS * 2 ** (level + 1))
                   for level, (c_in, c_out) in enumerate(itertools.pairwise(widths))]
        self.blocks = nn.ModuleList(blocks)
        self.out = TorusConv(widths[-1], 3)

    def forward(self, noise: Tensor, kind: Tensor, look: Tensor) -> Tensor:
        phase = _tiled(self.phase, noise.shape[2], noise.shape[3])
        h = torch.cat([noise, phase[None].expand(noise.shape[0], -1, -1, -1)], dim=1)
        for block in self.blocks:
            h = block(h, kind, look)
        return torch.sigmoid(self.out(h))


@torch.no_grad()
def emphasise_kind(generator: TilesGenerator, strength: float) -> None:
    """Push every conditional norm's kind (and kind x look) embedding away from the other kind's.

    A condition vector is kind + look + pair; with the kind-dependent parts moved to
    ``c(k) + s * (c(k) - c(other k))`` a wall is asked to differ from a floor of the same look
    by ``1 + 2s`` times what training learnt, as guidance does for diffusion models. ``0`` leaves
    the generator as trained; the recipe picks ``s`` on validation draws (``tiles_emphasis``, which
    does the same to an exported graph).
    """
    for module in generator.modules():
        if isinstance(module, _Condition):
            for table in (module.kind.weight, module.pair.weight):
                table.copy_(torch.from_numpy(away_from_other_kind(table.numpy(), strength)))


class TilesCritic(nn.Module):
    """(tiles [B, 3, 32, 32], kind [B], look [B]) -> (score [B], kind logits [B, 2], look logits [B, 6],
    kind logits of each 8 x 8 patch [B, 2, 4, 4]).

    The patch classifier is why: a wall made of rough speckle with courses in one corner passes a
    classifier that sees the whole tile, but its speckled patches are floor-like one by one."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(3, widths[0], 3, padding=1)), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        layers += [spectral_norm(nn.Conv2d(widths[-1], widths[-1], 3, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Linear(widths[-1], 1))
        self.project_kind = spectral_norm(nn.Embedding(len(KINDS), widths[-1]))
        self.project_look = spectral_norm(nn.Embedding(len(LOOKS), widths[-1]))
        self.project_pair = spectral_norm(nn.Embedding(NUM_PAIRS, widths[-1]))
        self.classify_kind = spectral_norm(nn.Linear(widths[-1], len(KINDS)))
        self.classify_look = spectral_norm(nn.Linear(widths[-1], len(LOOKS)))
        self.classify_patches = spectral_norm(nn.Conv2d(widths[-1], len(KINDS), 1))

    def forward(self, x: Tensor, kind: Tensor, look: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        patches = self.features(x * 2.0 - 1.0)
        h = patches.sum(dim=(2, 3))
        pair = kind * len(LOOKS) + look
        condition = self.project_kind(kind) + self.project_look(look) + self.project_pair(pair)
        score = self.score(h).squeeze(1) + (condition * h).sum(dim=1)
        return score, self.classify_kind(h), self.classify_look(h), self.classify_patches(patches)


def seam_gap(x: Tensor) -> Tensor:
    """How far the mean step across a tile's wrap-around edges is from its interior mean step.

    Both ways: a border stronger than the interior shows as a seam, a softer one as a
    blurred band where the tile repeats."""
    wrap = ((x[:, :, 0] - x[:, :, -1]).abs().mean() + (x[:, :, :, 0] - x[:, :, :, -1]).abs().mean()) / 2
    inner = ((x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()) / 2
    # A tenth either way is free: within it a frame can still sit on the tile's edge.
    return F.relu((wrap / inner.clamp_min(1e-4) - 1.0).abs() - _SEAM_SLACK)


def _per_patch(kind: Tensor, logits: Tensor) -> Tensor:
    """The tile's kind as the target of each of its patches: [B] -> [B, h, w]."""
    return kind[:, None, None].expand(-1, logits.shape[2], logits.shape[3])


def _mirror(x: Tensor, gen: torch.Generator) -> Tensor:
    """Mirror a random half of the batch left-right (lighting in Crawl comes from above, so no
    vertical flips); applied to real and fake alike, it curbs the critic's overfitting."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def train_tiles_gan(split: TilesSplit, *, seed: int, epochs: int, hooks: Hooks | None = None,
                    checkpoint_every: int = 20, statistics_batches: int = 16) -> TilesGenerator:
    """Train on ``split.train`` only; returns the EMA generator in eval mode.

    Every random draw comes from ``seed`` (weights via a forked global RNG, data order,
    noise and mirroring via one ``torch.Generator``), so a run is reproducible on the same
    machine, thread count and library versions.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    with forked(seed) as streams:
        return _train(split, streams, epochs, hooks, checkpoint_every, statistics_batches)


def _train(split: TilesSplit, streams: Streams, epochs: int, hooks: Hooks | None,
           checkpoint_every: int, statistics_batches: int) -> TilesGenerator:
    gen = streams.torch
    real_x = torch.from_numpy(split.train.unit()).permute(0, 3, 1, 2).contiguous()
    real_kind, real_look = torch.from_numpy(split.train.kind), torch.from_numpy(split.train.look)
    # Conditions of the fakes are drawn as often as they occur in the data.
    weights = torch.bincount(real_kind * len(LOOKS) + real_look, minlength=NUM_PAIRS).double()
    batches = EpochBatches(len(real_x), min(_BATCH, len(real_x)), gen)
    gan = Adversarial.create(TilesGenerator(), TilesCritic(), lr_g=_LR_G, lr_d=_LR_D, ema_decay=_EMA_DECAY)
    g, d = cast(TilesGenerator, gan.generator), gan.critic

    def draw(n: int) -> tuple[Tensor, Tensor, Tensor]:
        pair = torch.multinomial(weights, n, replacement=True, generator=gen)
        noise = torch.randn(n, NOISE_CHANNELS, CELLS, CELLS, generator=gen)
        return noise, pair // len(LOOKS), pair % len(LOOKS)

    def step(i: int) -> Mapping[str, float]:
        idx = batches.batch(i)
        x, kind, look = real_x[idx], real_kind[idx], real_look[idx]
        noise, fake_kind, fake_look = draw(len(idx))
        fake = g(noise, fake_kind, fake_look)
        score_real, kind_logits, look_logits, patch_logits = d(_mirror(x, gen), kind, look)
        score_fake, _, _, _ = d(_mirror(fake.detach(), gen), fake_kind, fake_look)
        aux_real = (F.cross_entropy(kind_logits, kind) + F.cross_entropy(look_logits, look)
                    + F.cross_entropy(patch_logits, _per_patch(kind, patch_logits)))
        loss_d = hinge_critic_loss(score_real, score_fake) + _AUX_WEIGHT_D * aux_real
        gan.critic_step(loss_d)
        score_fake, kind_logits, look_logits, patch_logits = d(_mirror(fake, gen), fake_kind, fake_look)
        seam = seam_gap(fake)
        loss_g = (-score_fake.mean() + _AUX_WEIGHT_KIND * F.cross_entropy(kind_logits, fake_kind)
                  + _AUX_WEIGHT_LOOK * F.cross_entropy(look_logits, fake_look) + _SEAM_WEIGHT * seam
                  + _AUX_WEIGHT_PATCHES * F.cross_entropy(patch_logits, _per_patch(fake_kind, patch_logits)))
        gan.generator_step(loss_g, i)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "seam_gap": seam.item()}

    ema = cast(TilesGenerator, gan.run(epochs * batches.per_epoch, step, streams, hooks,
                                       checkpoint_every * batches.per_epoch))
    recompute_batchnorm(ema, lambda: draw(256), statistics_batches)
    return ema

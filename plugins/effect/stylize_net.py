"""The style-transfer network, its losses and its training loop (torch; export path only).

One feed-forward network serves every style (Dumoulin et al. 2017): each normalisation
layer has a scale and a shift per style, chosen by the ``style`` index. The scale and
shift are applied without per-instance statistics (conditional affine, no instance
norm), so the network is a plain finite-support filter: a tile with enough context gives
exactly the pixels the whole frame gives, which makes tiled serving seamless.

Layout (Johnson et al. 2016, shrunk): 3x3 conv at full resolution, two stride-2 convs,
residual blocks at 1/4 resolution, two nearest-neighbour upsamplings with 3x3 convs, a
3x3 conv to an RGB offset added to the input in logit space, so an untrained network is
the identity and the output stays in (0, 1). A per-style 3x3 colour matrix on the input
pixels joins that offset: the palette has its own short path. Convolutions pad with zeros, so any size
down to 1x1 runs; served tiles carry real context, so the padding never shows there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from museforge.export.callbacks import Hooks
from museforge.export.fit import fit
from museforge.export.schedule import Schedule
from museforge.export.seeds import seeded

from .stylize_quality import FEATURE_SEED, INPUT_MEAN, MULTIPLE, extractor_weights

WIDTHS = (16, 32, 64)  # channels at full, 1/2 and 1/4 resolution
BLOCKS = 3
# Input pixels each output pixel depends on, each side: 1 (head) + 1 (first stride-2 conv)
# + 2 (second) + 4 * 2 * BLOCKS (residual convs at 1/4) + 2 (up conv at 1/2) + 1 + 1
# (full-resolution convs) = 32 for a pixel on the 4-px grid, up to 3 more off it.
RECEPTIVE_RADIUS = 1 + 1 + 2 + 4 * 2 * BLOCKS + 2 + 1 + 1 + 3
PALETTE_LR_GAIN = 10.0
NORM_PATCHES = 48  # training patches that set each style's distance unit
_EDGE = 0.02  # input clamp before the logit, so pure black/white stay finite

class CondAffine(nn.Module):
    """x * scale[style] + shift[style], per channel: conditional normalisation without statistics."""

    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(styles, channels))
        self.shift = nn.Parameter(torch.zeros(styles, channels))

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return x * self.scale[style][:, :, None, None] + self.shift[style][:, :, None, None]


class _ConvAffine(nn.Module):
    def __init__(self, cin: int, cout: int, styles: int, stride: int = 1, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.affine = CondAffine(cout, styles)
        self.relu = relu

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        y = self.affine(self.conv(x), style)
        return F.relu(y) if self.relu else y


class _Residual(nn.Module):
    def __init__(self, width: int, styles: int) -> None:
        super().__init__()
        self.a = _ConvAffine(width, width, styles)
        self.b = _ConvAffine(width, width, styles, relu=False)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return x + self.b(self.a(x, style), style)


class Stylizer(nn.Module):
    """(image [N, 3, H, W] sRGB in [0, 1], style [N] int64) -> [N, 3, H, W] in (0, 1)."""

    def __init__(self, styles: int, widths: tuple[int, int, int] = WIDTHS, blocks: int = BLOCKS) -> None:
        super().__init__()
        w1, w2, w4 = widths
        self.head = _ConvAffine(3, w1, styles)
        self.down1 = _ConvAffine(w1, w2, styles, stride=2)
        self.down2 = _ConvAffine(w2, w4, styles, stride=2)
        self.blocks = nn.ModuleList(_Residual(w4, styles) for _ in range(blocks))
        self.up1 = _ConvAffine(w4, w2, styles)
        self.up2 = _ConvAffine(w2, w1, styles)
        self.tail = nn.Conv2d(w1, 3, 3, padding=1)
        # A per-style colour matrix on the input pixels: palettes are learnt in a few steps
        # through this direct path, while the convolutions learn the texture.
        self.colour = nn.Parameter(torch.zeros(styles, 3, 3))
        self.colour_shift = nn.Parameter(torch.zeros(styles, 3))
        assert self.tail.bias is not None
        nn.init.zeros_(self.tail.weight)  # start as the identity
        nn.init.zeros_(self.tail.bias)

    def forward(self, image: Tensor, style: Tensor) -> Tensor:
        height, width = image.shape[2], image.shape[3]
        # Sizes that are not a multiple of 4 are padded (edge pixels repeated) and cropped back.
        pad_h = (MULTIPLE - height % MULTIPLE) % MULTIPLE
        pad_w = (MULTIPLE - width % MULTIPLE) % MULTIPLE
        x = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
        y = self.down2(self.down1(self.head(x, style), style), style)
        for block in self.blocks:
            y = block(y, style)
        y = self.up1(F.interpolate(y, scale_factor=2.0, mode="nearest"), style)
        y = self.up2(F.interpolate(y, scale_factor=2.0, mode="nearest"), style)
        clamped = torch.clamp(x, _EDGE, 1.0 - _EDGE)
        palette = torch.matmul(self.colour[style], (x - INPUT_MEAN).flatten(2)).reshape(x.shape)
        offset = palette + self.colour_shift[style][:, :, None, None] + self.tail(y)
        out = torch.sigmoid(torch.log(clamped / (1.0 - clamped)) + offset)
        return out[:, :, :height, :width]


class FeatureGrams(nn.Module):
    """Torch twin of ``stylize_quality.gram_matrices`` (same fixed weights), batched."""

    def __init__(self, seed: int = FEATURE_SEED) -> None:
        super().__init__()
        self.weights = [torch.from_numpy(w.copy()) for w in extractor_weights(seed)]

    def forward(self, image: Tensor) -> list[Tensor]:
        x = image - INPUT_MEAN
        grams = [_gram(x)]
        for level, w in enumerate(self.weights):
            if level:
                x = F.avg_pool2d(x, 2)
            x = F.relu(F.conv2d(x, w))
            grams.append(_gram(x))
        return grams


def _gram(x: Tensor) -> Tensor:
    f = x.flatten(2)
    return f @ f.transpose(1, 2) / f.shape[2]


def style_distance(grams: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
    """Per sample: mean over levels of ||G - G_style||_F / ||G_style||_F (as the metric)."""
    terms = [torch.linalg.matrix_norm(g - t) / torch.linalg.matrix_norm(t)
             for g, t in zip(grams, targets, strict=True)]
    return torch.stack(terms).mean(0)


def _luma(x: Tensor) -> Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def luma_ssim(a: Tensor, b: Tensor, window: int = 7) -> Tensor:
    """Per-sample mean SSIM of the luminances (uniform window), as ``metrics.ssim``."""
    la, lb = _luma(a), _luma(b)
    c1, c2 = 0.01**2, 0.03**2
    n = window * window
    cov = n / (n - 1)

    def box(t: Tensor) -> Tensor:
        return F.avg_pool2d(t, window, stride=1)

    mu_a, mu_b = box(la), box(lb)
    var_a = (box(la * la) - mu_a**2) * cov
    var_b = (box(lb * lb) - mu_b**2) * cov
    cov_ab = (box(la * lb) - mu_a * mu_b) * cov
    s = ((2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


MakeBatch = Callable[[np.random.Generator, int], np.ndarray]  # (rng, count) -> [N, 3, s, s]


def _style_scale(features: FeatureGrams, sample: Tensor, target_t: Sequence[Tensor]) -> Tensor:
    """Each style's distance from typical training patches (their median), its unit in the loss.

    So far styles and near ones pull alike. A per-style constant, not the patch's own
    distance: patches cut from a style's own picture are near zero and would dominate.
    """
    with torch.no_grad():
        sample_grams = features(sample)
        return torch.stack([style_distance(sample_grams, [t[k].expand(len(sample), -1, -1) for t in target_t])
                            .median() for k in range(len(target_t[0]))])


def train_stylizer(model: Stylizer, make_batch: MakeBatch, targets: Sequence[Sequence[np.ndarray]], *,
                   steps: int, batch: int, seed: int, lr: float, style_weight: float,
                   content_weight: float, hooks: Hooks | None = None) -> Stylizer:
    """Adam on style_weight * relative style distance + content_weight * (1 - luma SSIM).

    Styles cycle through the batch, so each step trains every style equally.
    """
    streams = seeded(seed)
    features = FeatureGrams()
    target_t = [torch.from_numpy(np.stack([t[level] for t in targets]).astype(np.float32))
                for level in range(len(targets[0]))]
    style_index = torch.arange(batch) % len(targets)
    sample = torch.from_numpy(np.ascontiguousarray(make_batch(streams.numpy, NORM_PATCHES)))
    scale = _style_scale(features, sample, target_t)
    # The palette path needs large moves (greying a photograph is a matrix far from the
    # identity), so it learns faster than the convolutions.
    palette = {id(model.colour), id(model.colour_shift)}
    opt = torch.optim.Adam([
        {"params": [p for p in model.parameters() if id(p) not in palette], "lr": lr},
        {"params": [model.colour, model.colour_shift], "lr": lr * PALETTE_LR_GAIN},
    ])

    def loss(step: int) -> tuple[Tensor, Mapping[str, float]]:
        x = torch.from_numpy(np.ascontiguousarray(make_batch(streams.numpy, batch)))
        out = model(x, style_index)
        ratio = style_distance(features(out), [t[style_index] for t in target_t]) / scale[style_index]
        similarity = luma_ssim(out, x)
        value = style_weight * ratio.mean() + content_weight * (1.0 - similarity).mean()
        return value, {"loss": value.item(), "ratio": ratio.mean().item(), "ssim": similarity.mean().item()}

    fit(model, opt, loss, steps=steps, streams=streams, schedule=Schedule(warmup_divisor=20), hooks=hooks,
        checkpoint_every=200)
    return model

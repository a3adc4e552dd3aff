"""Style statistics and held-out figures for effect.stylize (numpy only: tests score the ONNX).

The feature extractor is a fixed, seeded stack of random 3x3 convolutions with ReLUs
and 2x2 mean pooling between levels (4 levels, receptive fields of 3 to 45 px), plus
the centred pixels themselves as level 0, whose Gram matrix is the palette: random
filters mix the colour channels into mostly brightness-like responses, so without it
a grey style could leave a photograph's colours alone. No
pretrained network can be fetched here, and random multi-scale filters are known to
carry the statistics that define a texture (Ustyuzhaninov et al. 2017, "What does it
take to generate natural textures?"). A picture's style is the Gram matrix of each
level's features; the style distance of a picture to a style image is the mean over
levels of the relative Frobenius distance of their Gram matrices.

The same weights drive the training loss (``stylize_net`` copies them into torch), and
a second extractor, same architecture but another seed, gives an independent check
that the network did not just learn the quirks of one set of filters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .metrics import luminance, ssim
from .photo_data import PhotoSplit, load_photo

__all__ = ["CHECK_SEED", "FEATURE_SEED", "LEVELS", "STYLES", "Style", "evaluate_stylizer",
           "extractor_weights", "gram_matrices", "session_stylizer", "style_distance",
           "style_grams", "style_image"]

FEATURE_SEED = 20170501  # the extractor the network is trained against
CHECK_SEED = 7  # an independent extractor of the same shape, for the cross-check figure
LEVELS = (32, 48, 64, 64)  # output channels of each level's 3x3 convolution
INPUT_MEAN = 0.5  # pixels are centred before the first convolution
MULTIPLE = 4  # the network downsamples twice by 2; it pads other sizes itself
RATIO_TARGET = 0.5  # output's style distance <= this x the input's
SSIM_TARGET = 0.5  # luminance SSIM of output to input >= this


@dataclass(frozen=True)
class Style:
    """One style: a packaged image, the part of it used, and the scale it is seen at."""

    name: str
    source: str  # "package:name", as photo_data.load_photo reads it
    crop: tuple[int, int, int, int] | None  # top, left, height, width; None: whole image
    scale: float  # resize factor after cropping (sets the size of the style's marks)
    why: str


STYLES: tuple[Style, ...] = (
    Style("ihc", "skimage:immunohistochemistry", (0, 0, 256, 256), 1.0,
          "brown-stained cell walls around pale blue nuclei: a strong two-colour palette and "
          "a cellular, brush-stroke-like texture (the densely stained top-left quarter; the "
          "whole slide is mostly pale background, too bright for dark photographs)"),
    Style("retina", "skimage:retina", (300, 300, 810, 810), 0.5,
          "a saturated orange-red field crossed by dark branching vessels (the black "
          "surround outside the fundus is cropped away)"),
    Style("gravel", "skimage:gravel", None, 1.0,
          "grey, densely packed pebbles: texture without colour, a mosaic of small facets"),
)
STYLE_NAMES = tuple(s.name for s in STYLES)


@functools.cache
def extractor_weights(seed: int = FEATURE_SEED) -> tuple[np.ndarray, ...]:
    """The random filters of each level, [out, in, 3, 3] float32 (He-scaled normals)."""
    rng = np.random.default_rng(seed)
    weights = []
    channels = 3
    for out in LEVELS:
        w = rng.standard_normal((out, channels, 3, 3)) * np.sqrt(2.0 / (channels * 9))
        weights.append(w.astype(np.float32))
        channels = out
    return tuple(weights)


def _conv3x3(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid 3x3 convolution (cross-correlation, as torch): [C, H, W] -> [O, H-2, W-2]."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))  # C,H',W',3,3
    return np.tensordot(w, windows, axes=([1, 2, 3], [0, 3, 4])).astype(np.float32)


def _pool2(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    x = x[:, :h, :w]
    return 0.25 * (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2])


def gram_matrices(image: np.ndarray, seed: int = FEATURE_SEED) -> list[np.ndarray]:
    """Gram matrix (channels x channels, averaged over positions) of each level's features.

    ``image`` is HxWx3 sRGB in [0, 1]. Valid convolutions: nothing is invented at borders.
    """
    x = np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 0, 1)) - INPUT_MEAN
    grams = [_gram(x)]  # level 0, the pixels themselves: the palette (colour mean and spread)
    for level, w in enumerate(extractor_weights(seed)):
        if level:
            x = _pool2(x)
        x = np.maximum(_conv3x3(x, w), 0.0)
        grams.append(_gram(x))
    return grams


def _gram(x: np.ndarray) -> np.ndarray:
    f = x.reshape(x.shape[0], -1).astype(np.float64)
    return f @ f.T / f.shape[1]


def style_distance(grams: Sequence[np.ndarray], target: Sequence[np.ndarray]) -> float:
    """Mean over levels of ||G - G_style||_F / ||G_style||_F."""
    return float(np.mean([np.linalg.norm(g - t) / np.linalg.norm(t) for g, t in zip(grams, target,
                                                                                     strict=True)]))


def style_image(style: Style) -> np.ndarray:
    """The style's picture, HxWx3 float32 in [0, 1], cropped and scaled as declared."""
    raw = load_photo(style.source)
    if style.crop is not None:
        top, left, h, w = style.crop
        raw = raw[top:top + h, left:left + w]
    image = Image.fromarray(raw)
    if style.scale != 1.0:
        size = (round(image.width * style.scale), round(image.height * style.scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image, np.float32) / 255.0


@functools.cache
def style_grams(seed: int = FEATURE_SEED) -> tuple[tuple[np.ndarray, ...], ...]:
    """Each style's target Gram matrices, in STYLES order."""
    return tuple(tuple(gram_matrices(style_image(s), seed)) for s in STYLES)


Stylize = Callable[[np.ndarray, int], np.ndarray]  # (HxWx3 photo, style index) -> HxWx3


def evaluate_stylizer(stylize: Stylize, photos: Sequence[np.ndarray],
                      names: Sequence[str]) -> dict[str, Any]:
    """Per style and held-out photo: style-distance ratio (output / input) and luminance SSIM.

    ``ratio`` uses the training extractor, ``check_ratio`` the independent one. A style
    meets the targets when its worst photo does: ratio <= 0.5 and SSIM >= 0.5.
    """
    per_style: dict[str, Any] = {}
    for index, style in enumerate(STYLES):
        per_photo: dict[str, dict[str, float]] = {}
        for name, photo in zip(names, photos, strict=True):
            out = np.asarray(stylize(photo, index), np.float32)
            figures: dict[str, float] = {}
            for key, seed in (("ratio", FEATURE_SEED), ("check_ratio", CHECK_SEED)):
                target = style_grams(seed)[index]
                before = style_distance(gram_matrices(photo, seed), target)
                after = style_distance(gram_matrices(out, seed), target)
                figures[key] = after / before
            figures["ssim"] = ssim(luminance(photo), luminance(out))
            per_photo[name] = figures
        summary = _summary(per_photo)
        summary["meets_targets"] = bool(summary["ratio_worst"] <= RATIO_TARGET
                                        and summary["ssim_worst"] >= SSIM_TARGET)
        per_style[style.name] = {**summary, "per_photo": per_photo}
    return {
        "styles": per_style,
        "all_meet_targets": all(s["meets_targets"] for s in per_style.values()),
        "targets": {"ratio_max": RATIO_TARGET, "ssim_min": SSIM_TARGET},
        "held_out": list(names),
        "extractor": {"levels": list(LEVELS), "seed": FEATURE_SEED, "check_seed": CHECK_SEED},
    }


def _summary(per_photo: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    values = list(per_photo.values())
    out: dict[str, Any] = {}
    for key in ("ratio", "check_ratio", "ssim"):
        column = [v[key] for v in values]
        out[key] = float(np.mean(column))
        out[f"{key}_worst"] = float(min(column) if key == "ssim" else max(column))
    return out


def session_stylizer(session: Any) -> Stylize:
    """Run an ONNX session on a whole photograph exactly as the effect serves one tile.

    The frame is padded to the 4-px grid (edge repeated), then HALO px of mirrored
    context are added around it; both are cropped from the result.
    """
    from .stylize import GRID, HALO

    def run(photo: np.ndarray, style: int) -> np.ndarray:
        height, width = photo.shape[:2]
        x = np.asarray(photo, np.float32).transpose(2, 0, 1)
        x = np.pad(x, ((0, 0), (0, -height % GRID), (0, -width % GRID)), mode="edge")
        x = np.pad(x, ((0, 0), (HALO, HALO), (HALO, HALO)), mode="reflect")
        feed = {"image": np.ascontiguousarray(x[None]), "style": np.array([style], np.int64)}
        out = np.asarray(session.run(["result"], feed)[0][0])
        return out[:, HALO:HALO + height, HALO:HALO + width].transpose(1, 2, 0)

    return run


def centre_crops(photos: Sequence[np.ndarray], side: int) -> list[np.ndarray]:
    crops = []
    for p in photos:
        y, x = (p.shape[0] - side) // 2, (p.shape[1] - side) // 2
        crops.append(p[y:y + side, x:x + side])
    return crops


def evaluate_session(session: Any, split: PhotoSplit, crop: int | None = None) -> dict[str, Any]:
    """Held-out figures per style (whole photographs unless ``crop``), on the ONNX model."""
    photos = list(split.held_out) if crop is None else centre_crops(split.held_out, crop)
    return evaluate_stylizer(session_stylizer(session), photos, split.held_out_names)

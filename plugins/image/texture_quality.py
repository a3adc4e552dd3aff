"""Quality metrics for generated textures: family likeness and tiling seams.

numpy, scipy and scikit-image only (no torch), so tests can score the shipped ONNX
model with nothing but onnxruntime.

Family likeness compares a fixed texture descriptor (:func:`texture_statistics`) of
generated images with that of the held-out strips of every family: a good generator's
brick is closer to held-out brick than to held-out grass or gravel. Seams are judged
by :func:`seam_ratio`, the gradient energy across the wrap-around edges of a tile
relative to the gradient energy between interior neighbours.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from .quality_checks import check_pixels
from .texture import NOISE_CHANNELS, SCALE
from .texture_data import FAMILIES, TextureSplit

__all__ = ["EVAL_PER_FAMILY", "EVAL_TILE", "evaluate_session", "evaluate_textures", "seam_ratio",
           "texture_statistics", "textures_with_session"]

# Statistics are compared on equal-sized tiles, since the spread of any spatial average
# depends on the area it is taken over. 128 px holds a few bricks and many stones.
EVAL_TILE = 128
# Held-out strips are cut into EVAL_TILE tiles at this stride (7 per 512-px strip).
_HELD_OUT_STRIDE = 64
# Bounds the cost of scoring very large generated images.
_MAX_TILES_PER_IMAGE = 16
# What the recipe records of the exported model.
EVAL_SIZE = 256  # pixels a side of each evaluated texture
EVAL_PER_FAMILY = 6
EVAL_SEED = 20261123
SEAM_TILES = 24  # tileable 256-px textures per family for the pooled seam figure

# The filter bank: a Gabor pyramid (the classic texture descriptor, as in
# Portilla-Simoncelli style statistics), fixed here so figures stay comparable:
# 4 octaves (2x2 mean pooling between them) x 4 orientations at 0.25 cycles/px, so the
# bank is tuned to wavelengths of 4, 8, 16 and 32 px in the full-resolution image.
_LEVELS = 4
_ORIENTATIONS = 4
_FREQUENCY = 0.25
_SIGMA = 2.0  # px at each level: about a one-octave bandwidth at this frequency
_EPS = 1e-6
# Mean brightness is on a 0..1 scale while every other feature is a log or a shape
# statistic of order 1; this weight makes a 0.1 brightness shift count like a factor
# of e^0.5 in energy.
_MEAN_WEIGHT = 5.0


@functools.cache
def _gabor_bank() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    from skimage.filters import gabor_kernel

    bank = []
    for k in range(_ORIENTATIONS):
        kernel = gabor_kernel(_FREQUENCY, theta=np.pi * k / _ORIENTATIONS, sigma_x=_SIGMA, sigma_y=_SIGMA)
        real = np.real(kernel)
        # Zero-mean real part: the filter then ignores brightness, which has its own feature.
        bank.append((real - real.mean(), np.imag(kernel).copy()))
    return tuple(bank)


def _pool(image: np.ndarray) -> np.ndarray:
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    return image[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def texture_statistics(image: np.ndarray) -> np.ndarray:
    """A fixed descriptor of a 2-D grayscale texture in [0, 1]; float64 vector of 19.

    Features: brightness (mean, weighted), log standard deviation and skewness of the
    pixels, then for each of 4 octaves and 4 orientations the log mean energy of a
    Gabor filter's complex response. Log energies make the distance scale-free across
    octaves (a factor of 2 in energy costs the same anywhere), and the pyramid covers
    the scales that tell these families apart: mortar lines and stone edges at 4-8 px,
    grass blades and stones at 8-16 px, brick courses at 16-32 px. Filtering uses
    reflected borders, so tiles need no periodicity; compare images of equal size.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or min(img.shape) < 2**_LEVELS:
        raise ValueError(f"image must be 2-D and at least {2**_LEVELS} px a side, got {np.shape(image)}")
    std = img.std()
    skew = float(((img - img.mean()) ** 3).mean() / (std**3 + _EPS))
    features = [_MEAN_WEIGHT * img.mean(), np.log(std + _EPS), skew]
    level = img
    for _ in range(_LEVELS):
        for real, imag in _gabor_bank():
            re = ndimage.convolve(level, real, mode="reflect")
            im = ndimage.convolve(level, imag, mode="reflect")
            features.append(float(np.log((re * re + im * im).mean() + _EPS)))
        level = _pool(level)
    return np.asarray(features, dtype=np.float64)


def seam_ratio(tile: np.ndarray) -> float:
    """How visible the wrap-around seams of a tile are; about 1.0 for a seamless tile.

    For each axis: the mean squared difference across the wrap (last column vs first
    column; last row vs first row) over the mean squared difference of interior
    neighbouring columns (rows). The two ratios are averaged rather than pooled, so an
    anisotropic texture (brick) weighs both seams equally. A crop of a photograph
    scores far above 1 (3 to 20 here: its edges are unrelated pixels); the target for
    tiles is <= 1.25.
    """
    t = np.asarray(tile, dtype=np.float64)
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 2 or min(t.shape) < 3:
        raise ValueError(f"tile must be 2-D and at least 3x3, got {np.shape(tile)}")
    ratios = []
    for axis in (0, 1):
        interior = np.mean(np.diff(t, axis=axis) ** 2)
        first, last = np.take(t, 0, axis=axis), np.take(t, -1, axis=axis)
        seam = np.mean((first - last) ** 2)
        # A flat tile has no gradient anywhere: its seam is as invisible as its interior.
        ratios.append(1.0 if interior == 0.0 else seam / interior)
    return float(np.mean(ratios))


def pooled_seam_ratio(tiles: Sequence[np.ndarray]) -> float:
    """``seam_ratio`` over many tiles at once: seam and interior energies are summed first.

    One tile's seam is a single row and column pair, so a brick mortar line that happens
    to fall on it dominates that tile's ratio; pooling asks whether seams are more
    visible than the interior on average, which is what a tiling shows.
    """
    ratios = []
    for axis in (0, 1):
        seam = interior = 0.0
        for tile in tiles:
            t = np.asarray(tile, dtype=np.float64)
            interior += float(np.mean(np.diff(t, axis=axis) ** 2))
            seam += float(np.mean((np.take(t, 0, axis=axis) - np.take(t, -1, axis=axis)) ** 2))
        ratios.append(1.0 if interior == 0.0 else seam / interior)
    return float(np.mean(ratios))


def _tiles(image: np.ndarray, stride: int, limit: int | None = None) -> list[np.ndarray]:
    h, w = image.shape
    tiles = [
        image[y : y + EVAL_TILE, x : x + EVAL_TILE]
        for y in range(0, h - EVAL_TILE + 1, stride)
        for x in range(0, w - EVAL_TILE + 1, stride)
    ]
    return tiles[:limit] if limit is not None else tiles


def _as_image(name: str, image: np.ndarray) -> np.ndarray:
    """Validate one generated image, accepting the ONNX (1, H, W) layout too."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or min(arr.shape) < EVAL_TILE:
        raise ValueError(
            f"generated[{name}] images must be 2-D and at least {EVAL_TILE} px a side, got {np.shape(image)}"
        )
    check_pixels(f"generated[{name}]", arr)
    return arr


def _mean_distance(a: np.ndarray, b: np.ndarray, *, distinct: bool = False) -> float:
    """Mean Euclidean distance between rows of ``a`` and rows of ``b``.

    With ``distinct`` (``a`` is ``b``), the zero self-distances are left out.
    """
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    if distinct:
        n = len(a)
        return float(d.sum() / (n * (n - 1)))
    return float(d.mean())


# Held-out descriptors are a pure function of the split; the fingerprint identifies it.
_HELD_OUT_STATS: dict[str, dict[str, np.ndarray]] = {}


def _held_out_statistics(split: TextureSplit) -> dict[str, np.ndarray]:
    stats = _HELD_OUT_STATS.get(split.fingerprint)
    if stats is None:
        stats = {
            fam: np.stack([texture_statistics(t) for t in _tiles(split.held_out[fam], _HELD_OUT_STRIDE)])
            for fam in FAMILIES
        }
        _HELD_OUT_STATS[split.fingerprint] = stats
    return stats


def evaluate_textures(
    generated: Mapping[str, Sequence[np.ndarray]], split: TextureSplit
) -> dict[str, float]:
    """Score generated textures against the held-out strips of ``split``.

    ``generated[family]`` holds 2-D images in [0, 1], each at least EVAL_TILE px a side;
    each is cut into EVAL_TILE tiles. For every family: ``own_distance_<f>`` (mean
    descriptor distance of its tiles to held-out tiles of its own family),
    ``nearest_other_distance_<f>`` (the smallest such mean over the other families),
    ``margin_<f>`` (other minus own; positive is good) and ``families_closest_to_own``
    (fraction of evaluated families with own < every other; target 1.0). For context,
    the same for real held-out tiles: ``held_out_own_distance_<f>`` (between distinct
    held-out tiles of a family, what a perfect generator would score) and
    ``held_out_nearest_other_distance_<f>``.
    """
    if not generated:
        raise ValueError("generated must contain images for at least one family")
    reference = _held_out_statistics(split)
    metrics: dict[str, float] = {}
    closest = 0
    for fam in generated:
        if fam not in reference:
            raise ValueError(f"generated has key {fam!r}, expected families {list(FAMILIES)}")
        images = generated[fam]
        if len(images) == 0:
            raise ValueError(f"generated[{fam}] is empty")
        tiles = [t for img in images for t in _tiles(_as_image(fam, img), EVAL_TILE, _MAX_TILES_PER_IMAGE)]
        stats = np.stack([texture_statistics(t) for t in tiles])
        own = _mean_distance(stats, reference[fam])
        other = min(_mean_distance(stats, reference[o]) for o in reference if o != fam)
        metrics[f"own_distance_{fam}"] = own
        metrics[f"nearest_other_distance_{fam}"] = other
        metrics[f"margin_{fam}"] = other - own
        closest += own < other
    metrics["families_closest_to_own"] = closest / len(generated)
    for fam, ref in reference.items():
        metrics[f"held_out_own_distance_{fam}"] = _mean_distance(ref, ref, distinct=True)
        metrics[f"held_out_nearest_other_distance_{fam}"] = min(
            _mean_distance(ref, reference[o]) for o in reference if o != fam
        )
    return metrics


def textures_with_session(session: Any, family: int, size: int, count: int, seed: int) -> list[np.ndarray]:
    """Tileable textures from an ONNX session, sampled as the server samples them."""
    cells = size // SCALE
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        noise = rng.standard_normal((1, NOISE_CHANNELS, cells, cells)).astype(np.float32)
        image = session.run(["image"], {"noise": noise, "family": np.array([family])})[0]
        out.append(np.asarray(image)[0, 0])
    return out


def evaluate_session(session: Any, split: TextureSplit, per_family: int = EVAL_PER_FAMILY) -> dict[str, Any]:
    """Family likeness and seams of the ONNX generator's textures (what the recipe records)."""
    generated = {
        name: textures_with_session(session, i, EVAL_SIZE, per_family, EVAL_SEED + i)
        for i, name in enumerate(FAMILIES)
    }
    figures: dict[str, Any] = dict(evaluate_textures(generated, split))
    seam_tiles = SEAM_TILES if per_family >= EVAL_PER_FAMILY else per_family
    for i, name in enumerate(FAMILIES):
        tiles = textures_with_session(session, i, EVAL_SIZE, seam_tiles, EVAL_SEED + 100 + i)
        figures[f"seam_ratio_pooled_256_{name}"] = pooled_seam_ratio(tiles)
    figures["seam_ratio_pooled_256"] = max(figures[f"seam_ratio_pooled_256_{n}"] for n in FAMILIES)
    # Single tiles, for information: a mortar line on the seam makes one tile's ratio large.
    figures["seam_ratio_single_max_256"] = max(
        seam_ratio(t) for images in generated.values() for t in images)
    large = textures_with_session(session, 0, 1024, 1, EVAL_SEED)[0]
    figures.update({"seam_ratio_1024": seam_ratio(large), "eval_size": EVAL_SIZE,
                    "eval_per_family": per_family, "seam_tiles_per_family": seam_tiles})
    return figures

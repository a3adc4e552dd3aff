"""Run a fully convolutional model over a large image in bounded memory, without seams.

The image is cut into equal tiles (so several share one session run). Each tile is
read with ``halo`` pixels of real context around it (mirrored at the image border) and
that context is cropped from the result, so a model whose receptive field fits in the
halo gives exactly what it would give on the whole frame. Neighbouring tiles also
overlap by ``blend`` pixels and are cross-faded there, which hides the small
differences of models that see further than the halo (a U-Net). Memory is the output
frame plus ``batch`` tiles, whatever the frame size.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from .generator import Progress

RunTiles = Callable[[np.ndarray], np.ndarray]  # [N, C, h, w] -> [N, C', h*scale, w*scale]


@dataclass(frozen=True)
class Tiling:
    tile: int = 256  # core tile side in input pixels (the part each run contributes)
    halo: int = 16  # context read around each tile and cropped from its output
    blend: int = 16  # overlap between neighbours, cross-faded
    scale: int = 1  # output pixels per input pixel
    multiple: int = 1  # the model needs input sides divisible by this
    batch: int = 4  # tiles per session run

    def __post_init__(self) -> None:
        if self.tile < 8 or self.halo < 0 or self.blend < 0 or self.scale < 1 or self.multiple < 1:
            raise ValueError(f"invalid tiling {self}")
        if self.blend >= self.tile:
            raise ValueError("blend must be smaller than the tile")


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    return [*starts, size - tile]  # the last tile is shifted back inside the image


def mirror_index(index: np.ndarray, size: int) -> np.ndarray:
    """Reflect indices into [0, size) (edge pixel not repeated), for any overshoot."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    folded = np.mod(index, period)
    return np.where(folded < size, folded, period - folded)


def _ramp(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    """1 in the middle, linear fades of the given widths at each end (never exactly 0)."""
    w = np.ones(length, np.float32)
    if fade_in:
        w[:fade_in] = (np.arange(fade_in, dtype=np.float32) + 1) / (fade_in + 1)
    if fade_out:
        w[length - fade_out:] = np.minimum(
            w[length - fade_out:], (np.arange(fade_out, 0, -1, dtype=np.float32)) / (fade_out + 1))
    return w


def run_tiled(
    run: RunTiles, image: np.ndarray, tiling: Tiling, out_channels: int,
    stage: str = "tiles",
) -> Generator[Progress, None, np.ndarray]:
    """Apply ``run`` to ``image`` ([C, H, W] float32) tile by tile; returns [C', H*s, W*s].

    A generator: it yields a Progress after every session run, and the result is its
    return value (``result = yield from run_tiled(...)``).
    """
    channels, height, width = image.shape
    s, halo = tiling.scale, tiling.halo
    th, tw = min(tiling.tile, height), min(tiling.tile, width)
    # Round the padded tile up to the model's multiple with extra context on the far side.
    ph = -(-(th + 2 * halo) // tiling.multiple) * tiling.multiple
    pw = -(-(tw + 2 * halo) // tiling.multiple) * tiling.multiple
    step_y, step_x = max(th - tiling.blend, 1), max(tw - tiling.blend, 1)
    ys, xs = _starts(height, th, step_y), _starts(width, tw, step_x)
    positions = [(y, x) for y in ys for x in xs]
    out = np.zeros((out_channels, height * s, width * s), np.float32)
    weight = np.zeros((height * s, width * s), np.float32)
    total = len(positions)
    for first in range(0, total, tiling.batch):
        group = positions[first:first + tiling.batch]
        tiles = np.empty((len(group), channels, ph, pw), np.float32)
        for i, (y, x) in enumerate(group):
            rows = mirror_index(np.arange(y - halo, y - halo + ph), height)
            cols = mirror_index(np.arange(x - halo, x - halo + pw), width)
            tiles[i] = image[:, rows[:, None], cols[None, :]]
        result = run(tiles)
        for i, (y, x) in enumerate(group):
            core = result[i, :, halo * s:(halo + th) * s, halo * s:(halo + tw) * s]
            wy = _ramp(th * s, tiling.blend * s if y > 0 else 0,
                       tiling.blend * s if y + th < height else 0)
            wx = _ramp(tw * s, tiling.blend * s if x > 0 else 0,
                       tiling.blend * s if x + tw < width else 0)
            w = wy[:, None] * wx[None, :]
            region = (slice(y * s, (y + th) * s), slice(x * s, (x + tw) * s))
            out[(slice(None), *region)] += core * w
            weight[region] += w
        yield Progress(min(first + tiling.batch, total), total, stage)
    out /= weight
    return out

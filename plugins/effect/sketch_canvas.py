"""Between an artist's pictures and the sketch network's 64 x 64 canvas, both ways (numpy, no torch).

The network learnt OpenMoji drawings at 64 x 64, strokes about two pixels wide, so every
drawing is scaled to fit that canvas (aspect kept, centred, padded with blank paper) and the
result is scaled back to the drawing's own size; the artist's strokes can then be laid over
it at full resolution, crisp whatever the size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from museforge import Picture

from .sketch_hints import HINT_CHANNELS

__all__ = ["HALO", "HINT_FROM_WHITE", "SIZE", "Canvas", "drawing_pixels", "hint_planes", "ink", "mask_plane",
           "straight_rgba"]

SIZE = 64
# 13 of 255 levels: pastels count as hints. JPEG ringing reaches 20-50 levels from white around
# a saturated scribble (q95-q60), so a level alone cannot tell it apart: see HALO.
HINT_FROM_WHITE = 0.05
# A pixel of an RGB hint image counts only where it is at least half as far from white as the
# strongest pixel within HALO_REACH (JPEG rings within its 8 px blocks, 16 px for 4:2:0 chroma):
# measured on two 2 px scribbles saved as JPEG q60-q95 at 64 and 256 px, that keeps every scribbled
# pixel and drops the ringing (at 256 px q60 all but 7 pixels touching the strokes; the bucket fill
# took the near-white halo before). A pale scribble that near a strong one is taken for ringing.
HALO = 0.5
HALO_REACH = 16
# A scribble whose pixels lie within this of its median colour, but for a tenth (JPEG's noise on a
# 2 px line, its anti-aliased edge), is that one colour: a bucket fill would paint a patchwork of
# its shades, each region pixel taking its nearest scribbled pixel's.
ONE_COLOUR = 0.25
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# A photographed page's lighting is followed over blocks of 1/PAPER_BLOCKS of its longer side (at
# least PAPER_BLOCK px); paper within PAPER_EVEN of one level is even, and its grain reaches GRAIN
# robust standard deviations above it (a clean digital drawing has neither: its ink is read as before).
PAPER_BLOCKS = 8
PAPER_BLOCK = 16
PAPER_EVEN = 0.04
GRAIN = 3.0
LIGHT_ON_DARK = 0.9


def _grey(picture: Picture) -> np.ndarray:
    colour = np.clip(picture.colour, 0.0, 1.0)
    return colour[:, :, 0] if colour.shape[2] == 1 else colour @ _LUMA


def ink(picture: Picture) -> np.ndarray:
    """(H, W) darkness of the strokes in [0, 1]: dark on white paper or on transparency.

    Paper that is not white (a scan, a photo of a page) reads as faint ink; its typical
    level (the median, where most of a page is paper) is taken off first. Where most of the
    drawing is ink (a silhouette, a large black disc), the paper is the median of the light
    pixels instead: the median of all would be the ink's, and every stroke would be lost.
    Light strokes on dark paper (``_light_on_dark``) are read as the same drawing dark on white.
    A page with grain (a scan, a photo) has its grain taken off too, and one lit unevenly its
    lighting (``_paper_level``): else the darker side and the noise come back as faint ink.
    """
    darkness = 1.0 - _grey(picture)
    if picture.alpha is not None:
        darkness = darkness * np.clip(picture.alpha, 0.0, 1.0)
    if _light_on_dark(darkness):  # the light is the ink: read as the same drawing dark on white
        darkness = _grey(picture)
        if picture.alpha is not None:
            darkness = darkness * np.clip(picture.alpha, 0.0, 1.0)
    paper = float(np.median(darkness)) if darkness.size else 0.0
    if paper >= 0.5:
        light = darkness[darkness < 0.5]
        if light.size:
            paper = float(np.median(light))
    grain = _grain(darkness, paper)
    if grain == 0.0:  # clean paper, most of it one level (every digital drawing): as always
        if paper > 0.02:
            darkness = (darkness - paper) / (1.0 - paper) if paper < 0.9 else darkness * 0.0
        return np.clip(darkness, 0.0, 1.0).astype(np.float32)
    # A photographed or scanned page: its grain and its lighting are paper, not faint ink.
    level = _paper_level(darkness)
    if level is not None:
        grain = _grain(darkness, level)
    floor = np.asarray((paper if level is None else level) + grain, np.float32)
    lifted = np.where(floor < 0.9, (darkness - floor) / np.maximum(1.0 - floor, 0.1), 0.0)
    return np.clip(np.where(floor > 0.02, lifted, darkness), 0.0, 1.0).astype(np.float32)


def _light_on_dark(darkness: np.ndarray) -> bool:
    """Light strokes on dark paper (chalk on a board, a negative): mostly dark, the dark running
    all round the border (LIGHT_ON_DARK of its pixels), and something light on it. A silhouette or
    a dark disc leaves paper at the border, and a comic panel's black frame is not most of it."""
    if darkness.size == 0 or float(np.median(darkness)) < 0.5 or not bool((darkness < 0.5).any()):
        return False
    border = np.concatenate([darkness[0], darkness[-1], darkness[:, 0], darkness[:, -1]])
    return bool((border >= 0.5).mean() >= LIGHT_ON_DARK)


def _paper_level(darkness: np.ndarray) -> np.ndarray | None:
    """(H, W) the paper's darkness where a page is lit unevenly (a photo: brighter by the lamp,
    darker at the corners), fitted as a smooth surface to the blocks that are mostly paper;
    None where it is even (within PAPER_EVEN) or too small to tell."""
    height, width = darkness.shape
    side = max(PAPER_BLOCK, -(-max(height, width) // PAPER_BLOCKS))
    rows, columns = -(-height // side), -(-width // side)
    if rows * columns < 6:
        return None
    points = []
    for r in range(rows):
        for c in range(columns):
            block = darkness[r * side:(r + 1) * side, c * side:(c + 1) * side]
            step = max(1, block.shape[0] // 64)  # a sample is enough for a median
            light = block[::step, ::step]
            light = light[light < 0.5]
            if light.size * step * step >= block.size / 2:  # mostly paper: ink would bias it
                points.append(((r + 0.5) * side, (c + 0.5) * side, float(np.median(light))))
    if len(points) < 6:
        return None
    y, x, level = (np.array(v, np.float64) for v in zip(*points, strict=True))
    scale = float(max(height, width))
    keep = np.ones(len(level), bool)
    for _ in range(3):  # blocks shaded in pencil sit above the lighting's surface: left out
        fit = np.linalg.lstsq(_surface(y[keep] / scale, x[keep] / scale), level[keep], rcond=None)[0]
        keep = level - _surface(y / scale, x / scale) @ fit <= PAPER_EVEN
        if keep.sum() < 6:
            return None
    rows_at = (np.arange(height, dtype=np.float32) / scale)[:, None]
    columns_at = (np.arange(width, dtype=np.float32) / scale)[None, :]
    c = fit.astype(np.float32)
    surface = np.clip(c[0] + c[1] * rows_at + c[2] * columns_at + c[3] * rows_at * rows_at
                      + c[4] * columns_at * rows_at + c[5] * columns_at * columns_at, 0.0, 1.0)
    if float(surface.max() - surface.min()) <= PAPER_EVEN:
        return None
    return surface


def _surface(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Quadratic terms in y and x: a lamp's falloff and a lens's vignette both fit."""
    return np.stack([np.ones_like(y), y, x, y * y, x * y, x * x], axis=-1)


def _grain(darkness: np.ndarray, level: float | np.ndarray) -> float:
    """How far the paper's own noise (a scan's or photo's grain) reaches above its level: GRAIN
    robust standard deviations of the paper pixels; 0 for clean paper (most pixels its level)."""
    step = max(1, int((darkness.size / 2**18) ** 0.5))  # a sample is enough for a median
    sample = darkness[::step, ::step]
    offsets = (sample - (level[::step, ::step] if isinstance(level, np.ndarray) else level))[sample < 0.5]
    if offsets.size == 0:
        return 0.0
    return GRAIN * 1.4826 * float(np.median(np.abs(offsets - np.median(offsets))))


def straight_rgba(picture: Picture) -> np.ndarray:
    """(4, H, W) straight RGBA in [0, 1] (grey repeated; no alpha: opaque)."""
    colour = np.clip(picture.colour, 0.0, 1.0)
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    alpha = np.ones(colour.shape[:2], np.float32)
    if picture.alpha is not None:
        alpha = np.clip(picture.alpha, 0.0, 1.0)
    return np.concatenate([colour.transpose(2, 0, 1), alpha[None]]).astype(np.float32)


def hint_planes(picture: Picture) -> np.ndarray:
    """(5, H, W) hints: a pixel is a hint where it is opaque (alpha > 0.5), or, without alpha
    (or with every pixel opaque, as drawing apps export a layer), where it is not white paper
    (``_scribbled``); it asks for its own colour, fully opaque."""
    rgba = straight_rgba(picture)
    layered = picture.alpha is not None and not bool((rgba[3] > 0.5).all())
    presence = rgba[3] > 0.5 if layered else _scribbled(rgba[:3])
    planes = np.zeros((HINT_CHANNELS, picture.height, picture.width), np.float32)
    planes[:3] = rgba[:3] * presence
    planes[3] = presence
    planes[4] = presence
    return planes


def _scribbled(rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool: the scribbles of an RGB hint image on white, without JPEG's ringing around
    them; ``rgb`` ((3, H, W)) is given each one-colour scribble's median colour in place."""
    from scipy import ndimage
    far = np.max(1.0 - rgb, axis=0)
    strongest = ndimage.maximum_filter(far, size=2 * HALO_REACH + 1)
    presence = (far >= HINT_FROM_WHITE) & (far >= HALO * strongest)
    labels, count = ndimage.label(presence, structure=np.ones((3, 3)))
    if count == 0:
        return presence
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        scribble = labels[box] == label
        window = rgb[(slice(None), *box)]
        colours = window[:, scribble]
        median = np.median(colours, axis=1, keepdims=True)
        # One colour, not two scribbles touching; its few worse pixels are 4:2:0 chroma at its edge.
        if np.percentile(np.abs(colours - median).max(axis=0), 90) <= ONE_COLOUR:
            window[:, scribble] = median
    return presence


def mask_plane(picture: Picture) -> np.ndarray:
    """(H, W) in [0, 1]: white (and opaque) is the region to redo."""
    plane = _grey(picture)
    if picture.alpha is not None:
        plane = plane * np.clip(picture.alpha, 0.0, 1.0)
    return plane.astype(np.float32)


def drawing_pixels(canvas_pixels: float, shape: tuple[int, ...], least: float = 1.0) -> float:
    """A length of ``canvas_pixels`` on the SIZE px canvas, in pixels of a drawing of ``shape``
    (H, W), and at least ``least``: the distances the finish and the regions measure on the drawing."""
    return max(canvas_pixels * max(shape) / SIZE, least)


def _resize(planes: np.ndarray, height: int, width: int) -> np.ndarray:
    if planes.shape[1:] == (height, width):
        return planes.astype(np.float32)
    # Box filtering when shrinking (every source pixel counts), bilinear when enlarging.
    method = Image.Resampling.BILINEAR if height > planes.shape[1] else Image.Resampling.BOX
    return np.stack([np.asarray(Image.fromarray(np.asarray(p, np.float32), mode="F").resize(
        (width, height), method), np.float32) for p in planes])


@dataclass(frozen=True)
class Canvas:
    """Where a height x width drawing sits on the network's SIZE x SIZE canvas."""

    height: int
    width: int

    @property
    def inner(self) -> tuple[int, int, int, int]:
        """(top, left, rows, columns) of the drawing on the canvas."""
        scale = SIZE / max(self.height, self.width)
        rows, columns = max(1, round(self.height * scale)), max(1, round(self.width * scale))
        return (SIZE - rows) // 2, (SIZE - columns) // 2, rows, columns

    def to_network(self, planes: np.ndarray, hints: bool = False) -> np.ndarray:
        """(C, H, W) -> (C, SIZE, SIZE), blank around. Hints are averaged where present only."""
        top, left, rows, columns = self.inner
        out = np.zeros((planes.shape[0], SIZE, SIZE), np.float32)
        if hints:
            presence = planes[4:5]
            scaled = _resize(np.concatenate([planes[:4] * presence, presence]), rows, columns)
            weight = scaled[4:5]
            inside = weight > 0.0  # any coverage: a thin scribble on a large canvas must not vanish
            scaled = np.concatenate([np.where(inside, scaled[:4] / np.maximum(weight, 1e-6), 0.0), inside])
        else:
            scaled = _resize(planes, rows, columns)
        out[:, top:top + rows, left:left + columns] = scaled
        return out

    def strokes(self, lines: np.ndarray, stroke: float) -> np.ndarray:
        """(SIZE, SIZE) bool: canvas pixels holding any pixel of ``lines`` ((H, W) ink) at ``stroke``
        or darker. Paper left is wholly paper underneath, so regions the strokes part at full size
        stay apart on the canvas (averaged, a 3 px line of a 256 px drawing is too faint to part them)."""
        return self.to_network((lines >= stroke).astype(np.float32)[None])[0] > 0.0

    def from_network(self, image: np.ndarray) -> np.ndarray:
        """(4, SIZE, SIZE) straight RGBA -> (4, H, W), resized premultiplied so edges keep their colour."""
        top, left, rows, columns = self.inner
        crop = image[:, top:top + rows, left:left + columns]
        premultiplied = np.concatenate([crop[:3] * crop[3:], crop[3:]])
        scaled = np.clip(_resize(premultiplied, self.height, self.width), 0.0, 1.0)
        alpha = scaled[3:]
        rgb = np.where(alpha > 1e-4, scaled[:3] / np.maximum(alpha, 1e-4), 0.0)
        return np.concatenate([np.clip(rgb, 0.0, 1.0), alpha]).astype(np.float32)

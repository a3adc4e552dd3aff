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

__all__ = ["HINT_FROM_WHITE", "SIZE", "Canvas", "hint_planes", "ink", "mask_plane", "straight_rgba"]

SIZE = 64
# 13 of 255 levels: pastels count as hints; JPEG ringing around a scribble (under ~10) does not,
# or a region's bucket fill would take the near-white of the pixels around each scribble.
HINT_FROM_WHITE = 0.05
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _grey(picture: Picture) -> np.ndarray:
    colour = np.clip(picture.colour, 0.0, 1.0)
    return colour[:, :, 0] if colour.shape[2] == 1 else colour @ _LUMA


def ink(picture: Picture) -> np.ndarray:
    """(H, W) darkness of the strokes in [0, 1]: dark on white paper or on transparency.

    Paper that is not white (a scan, a photo of a page) reads as faint ink; its typical
    level (the median, where most of a page is paper) is taken off first. Where most of the
    drawing is ink (a silhouette, a large black disc), the paper is the median of the light
    pixels instead: the median of all would be the ink's, and every stroke would be lost.
    """
    darkness = 1.0 - _grey(picture)
    if picture.alpha is not None:
        darkness = darkness * np.clip(picture.alpha, 0.0, 1.0)
    paper = float(np.median(darkness)) if darkness.size else 0.0
    if paper >= 0.5:
        light = darkness[darkness < 0.5]
        if light.size:
            paper = float(np.median(light))
    if paper > 0.02:
        darkness = (darkness - paper) / (1.0 - paper) if paper < 0.9 else darkness * 0.0
    return np.clip(darkness, 0.0, 1.0).astype(np.float32)


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
    """(5, H, W) hints: a pixel is a hint where it is opaque (alpha > 0.5), or, without
    alpha, where it is not white paper (HINT_FROM_WHITE or further from white in some channel);
    it asks for its own colour, fully opaque."""
    rgba = straight_rgba(picture)
    presence = (rgba[3] > 0.5 if picture.alpha is not None
                else np.max(1.0 - rgba[:3], axis=0) >= HINT_FROM_WHITE)
    planes = np.zeros((HINT_CHANNELS, picture.height, picture.width), np.float32)
    planes[:3] = rgba[:3] * presence
    planes[3] = presence
    planes[4] = presence
    return planes


def mask_plane(picture: Picture) -> np.ndarray:
    """(H, W) in [0, 1]: white (and opaque) is the region to redo."""
    plane = _grey(picture)
    if picture.alpha is not None:
        plane = plane * np.clip(picture.alpha, 0.0, 1.0)
    return plane.astype(np.float32)


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

    def from_network(self, image: np.ndarray) -> np.ndarray:
        """(4, SIZE, SIZE) straight RGBA -> (4, H, W), resized premultiplied so edges keep their colour."""
        top, left, rows, columns = self.inner
        crop = image[:, top:top + rows, left:left + columns]
        premultiplied = np.concatenate([crop[:3] * crop[3:], crop[3:]])
        scaled = np.clip(_resize(premultiplied, self.height, self.width), 0.0, 1.0)
        alpha = scaled[3:]
        rgb = np.where(alpha > 1e-4, scaled[:3] / np.maximum(alpha, 1e-4), 0.0)
        return np.concatenate([np.clip(rgb, 0.0, 1.0), alpha]).astype(np.float32)

"""Colour hints for ``effect.sketch``: the five planes the network reads beside the line art.

Planes 0-3 are the hinted colour as straight RGBA, plane 4 says where a hint is (1) or not
(0). Two kinds reach the network: an artist's scribbles (a few strokes of one colour each) and
a kept result (every pixel outside a mask, when a region is redone). Training draws both from
the artist's own colour version; serving reads them from the request. Numpy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HINT_CHANNELS", "empty", "keep_outside", "random_mask", "scribbles"]

HINT_CHANNELS = 5  # hinted RGBA (straight) and presence


def empty(height: int, width: int) -> np.ndarray:
    return np.zeros((HINT_CHANNELS, height, width), np.float32)


def keep_outside(previous: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Hints that keep ``previous`` ((4, H, W) straight RGBA) wherever ``mask`` ((H, W)) is below 0.5."""
    keep = (np.asarray(mask) < 0.5).astype(np.float32)
    return np.concatenate([np.asarray(previous, np.float32) * keep, keep[None]]).astype(np.float32)


def scribbles(colour: np.ndarray, lines: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` short strokes inside the drawing, each in the colour under its first pixel.

    ``colour`` is the (4, H, W) straight RGBA the strokes sample, ``lines`` the (H, W) ink: a
    stroke starts on an opaque pixel away from the ink, walks 4-16 pixels 1-3 wide, and stops at
    the ink, as an artist's scribble stays inside a region.
    """
    _, h, w = colour.shape
    hints = empty(h, w)
    inside = (colour[3] > 0.5) & (lines < 0.3)
    ys, xs = np.nonzero(inside)
    if len(ys) == 0:
        return hints
    for k in rng.integers(0, len(ys), size=count):
        y, x = float(ys[k]), float(xs[k])
        rgba = colour[:, ys[k], xs[k]]
        angle = rng.uniform(0.0, 2.0 * np.pi)
        radius = int(rng.integers(1, 3))  # a 1 or 3 pixel wide brush
        for _ in range(int(rng.integers(4, 17))):
            iy, ix = round(y), round(x)
            if not (0 <= iy < h and 0 <= ix < w and inside[iy, ix]):
                break
            y0, y1 = max(0, iy - radius + 1), min(h, iy + radius)
            x0, x1 = max(0, ix - radius + 1), min(w, ix + radius)
            # The brush is clipped to the region: a hint on a stroke would ask the stroke for colour.
            footprint = inside[y0:y1, x0:x1]
            hints[:4, y0:y1, x0:x1][:, footprint] = rgba[:, None]
            hints[4, y0:y1, x0:x1][footprint] = 1.0
            angle += rng.normal(0.0, 0.4)
            y, x = y + np.sin(angle), x + np.cos(angle)
    return hints


def random_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A region to redo, as a person would brush it: one to three ellipses, (H, W) of 0 and 1."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    mask = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0.15, 0.85) * height, rng.uniform(0.15, 0.85) * width
        ry, rx = rng.uniform(0.08, 0.3) * height, rng.uniform(0.08, 0.3) * width
        mask[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0] = 1.0
    return mask

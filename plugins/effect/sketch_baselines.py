"""The two baselines ``effect.sketch`` is measured against (numpy and SciPy; no model).

- **Flat fill**: every region the strokes enclose is filled with the training set's mean
  colour over that region's pixels; regions that reach the border are background and stay
  transparent; the strokes are drawn on top in black.
- **Nearest drawing**: the training drawing whose line art is closest (blurred, so a stroke
  one pixel off still counts as near) lends its colour version.
"""

from __future__ import annotations

import numpy as np

from museforge import defer_import

from .sketch_data import SketchPairs
from .sketch_regions import STROKE, regions

defer_import("scipy.ndimage")  # imported where used, after start-up (see defer_import)

__all__ = ["FlatFill", "NearestDrawing"]


def _blurred(lines: np.ndarray) -> np.ndarray:
    """(N, H, W) line art blurred by 1.5 px and flattened for distances."""
    from scipy import ndimage
    return ndimage.gaussian_filter(lines.astype(np.float32), sigma=(0, 1.5, 1.5)).reshape(len(lines), -1)


class FlatFill:
    """Fills enclosed regions with the training set's mean colour there."""

    def __init__(self, train: SketchPairs) -> None:
        colour = train.unit_colour()
        opaque = colour[:, 3] > 0.5
        paper = opaque & (train.unit_lines()[:, 0] < STROKE)
        counts = paper.sum(axis=0)
        # The mean colour of opaque paper at each pixel, over the drawings that have some there.
        self.mean = (colour[:, :3] * paper[:, None]).sum(axis=0) / np.maximum(counts, 1)
        overall = (colour[:, :3] * paper[:, None]).sum(axis=(0, 2, 3)) / paper.sum()
        self.mean[:, counts == 0] = overall[:, None]

    def __call__(self, lines: np.ndarray) -> np.ndarray:
        """(N, 1, H, W) darkness -> (N, 4, H, W) straight RGBA."""
        out = np.zeros((len(lines), 4, *lines.shape[2:]), np.float32)
        for n, plane in enumerate(lines[:, 0]):
            labels, outside = regions(plane)
            inside = (labels > 0) & ~outside[labels]
            for label in np.unique(labels[inside]):
                where = labels == label
                out[n, :3, where] = self.mean[:, where].mean(axis=1)
            alpha = np.maximum(inside.astype(np.float32), plane)
            out[n, :3] *= 1.0 - plane
            out[n, 3] = alpha
        return out


class NearestDrawing:
    """Returns the colour version of the training drawing whose blurred line art is nearest."""

    def __init__(self, train: SketchPairs) -> None:
        self.keys = _blurred(train.unit_lines()[:, 0])
        self.norms = np.sum(self.keys**2, axis=1)
        self.colour = train.unit_colour()

    def indices(self, lines: np.ndarray) -> np.ndarray:
        query = _blurred(lines[:, 0])
        distances = self.norms[None] - 2.0 * query @ self.keys.T
        return np.argmin(distances, axis=1)

    def __call__(self, lines: np.ndarray) -> np.ndarray:
        return self.colour[self.indices(lines)]

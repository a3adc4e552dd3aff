"""Training and held-out grids for the props VAE: truncated, scaled distance fields (numpy).

The network sees each procedural shape as its signed distance sampled at the cell
centres of a 32^3 grid over [-1, 1]^3, truncated to +-TRUNCATION and divided by it, so
every value lies in [-1, 1] and the band around the surface, where marching cubes reads,
carries the detail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .shapes import FAMILIES, make_shape

RESOLUTION = 32
CELL = 2.0 / RESOLUTION
TRUNCATION = 3 * CELL  # distances beyond three cells carry nothing marching cubes needs


def truncated_grid(family: str, split: str, index: int, resolution: int = RESOLUTION) -> np.ndarray:
    """One shape's field at ``resolution``^3, truncated and scaled to [-1, 1] ([x, y, z] float32)."""
    field = make_shape(family, split, index).grid(resolution)
    return np.clip(field / np.float32(TRUNCATION), -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class PropGrids:
    """Grids of one split: ``grids`` [N, R, R, R] in [-1, 1] and ``families`` [N] (index into FAMILIES)."""

    split: str
    grids: np.ndarray
    families: np.ndarray

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.grids.tobytes())
        digest.update(self.families.astype(np.int64).tobytes())
        return digest.hexdigest()


def prop_grids(split: str, per_family: int, resolution: int = RESOLUTION) -> PropGrids:
    """The first ``per_family`` shapes of every family in ``split``, family by family."""
    if per_family < 1:
        raise ValueError(f"per_family must be >= 1, got {per_family}")
    grids = np.stack([truncated_grid(family, split, index, resolution)
                      for family in FAMILIES for index in range(per_family)])
    families = np.repeat(np.arange(len(FAMILIES)), per_family)
    return PropGrids(split, grids, families)


def family_weights(families: np.ndarray) -> np.ndarray:
    """[N] family indices -> [N, F] one-hot float32 weights (the networks' family input)."""
    return np.eye(len(FAMILIES), dtype=np.float32)[families]


def occupancy_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of the insides (negative values) of grids a and b, per leading index."""
    inside_a, inside_b = a < 0, b < 0
    axes = tuple(range(1, inside_a.ndim)) if inside_a.ndim > 3 else None
    intersection = np.logical_and(inside_a, inside_b).sum(axis=axes)
    union = np.logical_or(inside_a, inside_b).sum(axis=axes)
    return np.asarray(intersection / np.maximum(union, 1), np.float64)

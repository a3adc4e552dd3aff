"""What an output looks like, as a short vector a reward model can weigh.

A user rates what they see, not the latent behind it, and for most generators the two are
far apart: a tile's brightness or a texture's contrast is no straight line in its noise.
So steering renders latents and describes the result:

- images: per-channel mean and spread, brightness and its spread, colourfulness, edge
  energy, alpha coverage, and 4 x 4 brightness and 2 x 2 colour thumbnails (layout);
- meshes: the bounding box's proportions, how far the surface lies from the vertical axis
  (mean, spread, and at 8 heights), and how rough it is.

Nothing here knows any user's taste; these are the axes along which a taste is fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.generator import Media

THUMB, COLOUR_THUMB, HEIGHTS = 4, 2, 8


def media_features(media: Media) -> np.ndarray | None:
    """The vector of an image or a mesh (None for other media: nothing to steer by)."""
    if media.kind == "image":
        return image_features(np.asarray(media.data))
    if media.kind == "mesh":
        vertices = _vertices(media.data)
        return mesh_features(vertices) if vertices is not None and len(vertices) >= 4 else None
    return None


def image_features(data: np.ndarray) -> np.ndarray:
    pixels = data.astype(np.float64)
    if data.dtype == np.uint8:
        pixels /= 255.0
    elif data.dtype == np.uint16:
        pixels /= 65535.0
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    alpha = pixels[..., 3] if pixels.shape[2] in (2, 4) else np.ones(pixels.shape[:2])
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    grey = colour @ np.array([0.2126, 0.7152, 0.0722])
    weight = alpha / max(float(alpha.sum()), 1e-9)
    means = np.tensordot(weight, colour, axes=2)
    spreads = np.sqrt(np.tensordot(weight, (colour - means) ** 2, axes=2))
    bright = float((weight * grey).sum())
    shown = grey * alpha + (1.0 - alpha) * bright  # the ground counts as average, not as black
    edges = float(np.abs(np.diff(shown, axis=0)).mean() + np.abs(np.diff(shown, axis=1)).mean())
    return np.concatenate([
        means, spreads,
        [bright, float(np.sqrt((weight * (grey - bright) ** 2).sum())),
         float((weight * (colour.max(axis=2) - colour.min(axis=2))).sum()), edges, float(alpha.mean())],
        _thumbnail(shown, THUMB).reshape(-1),
        np.stack([_thumbnail(colour[..., c] * alpha, COLOUR_THUMB) for c in range(3)]).reshape(-1),
    ])


def _thumbnail(plane: np.ndarray, cells: int) -> np.ndarray:
    rows = np.array_split(np.arange(plane.shape[0]), cells)
    columns = np.array_split(np.arange(plane.shape[1]), cells)
    return np.array([[plane[np.ix_(r, c)].mean() for c in columns] for r in rows])


def _vertices(data: Any) -> np.ndarray | None:
    """LOD0's vertices of a mesh media (an object with ``levels`` or ``vertices``)."""
    levels = getattr(data, "levels", None)
    found = getattr(levels[0], "vertices", None) if levels else getattr(data, "vertices", None)
    return None if found is None else np.asarray(found, dtype=np.float64)


def mesh_features(vertices: np.ndarray) -> np.ndarray:
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    size = max(float((high - low).max()), 1e-9)
    v = (vertices - (low + high) / 2) / size
    extent = (high - low) / size
    radius = np.hypot(v[:, 0], v[:, 2])
    band = np.clip(((v[:, 1] - v[:, 1].min()) / max(float(np.ptp(v[:, 1])), 1e-9) * HEIGHTS).astype(int),
                   0, HEIGHTS - 1)
    profile = np.array([radius[band == b].mean() if np.any(band == b) else 0.0 for b in range(HEIGHTS)])
    rough = float(np.abs(radius - np.median(radius)).mean())
    return np.concatenate([extent, [float(radius.mean()), float(radius.std()), rough], profile])

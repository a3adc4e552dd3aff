"""What a simulated user sees in an artifact: a few measures of the output itself.

Images (faces, textures, tiles, icons) are measured on their decoded pixels: brightness,
contrast, edge density, saturation and warmth (red over blue), and for icons how much of
the square the drawing covers. Props are measured on their LOD0 vertices (OBJ): how tall,
how deep and how round the shape is, and how rough its surface. A taste weighs these; the
steering code never sees them, only the ratings they lead to.

``signature`` is what diversity is measured on: a 16 x 16 thumbnail of an image (colour
kept), or a prop's profile (its radius at 16 heights and 16 angles, in units of its size).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

IMAGE_MEASURES = ("brightness", "contrast", "edges", "saturation", "warmth", "coverage")
MESH_MEASURES = ("height", "depth", "roundness", "roughness")


def _rgba(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"), dtype=np.float64) / 255.0


def image_measures(data: bytes) -> np.ndarray:
    rgba = _rgba(data)
    alpha = rgba[..., 3]
    weight = alpha / max(float(alpha.sum()), 1e-9)
    rgb = rgba[..., :3]
    grey = rgb @ np.array([0.2126, 0.7152, 0.0722])
    mean = float((grey * weight).sum())
    contrast = float(np.sqrt(((grey - mean) ** 2 * weight).sum()))
    edges = float((np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]).mean())
    saturation = float(((rgb.max(axis=2) - rgb.min(axis=2)) * weight).sum())
    warmth = float(((rgb[..., 0] - rgb[..., 2]) * weight).sum())
    return np.array([mean, contrast, edges, saturation, warmth, float(alpha.mean())])


def image_signature(data: bytes) -> np.ndarray:
    rgba = _rgba(data)
    shown = Image.fromarray(np.uint8(np.rint(rgba[..., :3] * rgba[..., 3:] * 255)))
    small = shown.resize((16, 16), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64).reshape(-1) / 255.0


def obj_vertices(data: bytes) -> np.ndarray:
    """LOD0's vertices: those before the file's second object."""
    found, objects = [], 0
    for line in data.decode().splitlines():
        if line.startswith("o "):
            objects += 1
            if objects > 1:
                break
        elif line.startswith("v "):
            found.append([float(v) for v in line.split()[1:4]])
    return np.asarray(found)


def _centred(vertices: np.ndarray) -> np.ndarray:
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    return (vertices - (low + high) / 2) / max(float((high - low).max()), 1e-9)


def mesh_measures(data: bytes) -> np.ndarray:
    v = _centred(obj_vertices(data))
    extent = v.max(axis=0) - v.min(axis=0)  # the largest side is 1
    radius = np.hypot(v[:, 0], v[:, 2])
    roundness = float(1.0 - radius.std() / max(float(radius.mean()), 1e-9))
    rough = float(np.abs(radius - np.median(radius)).mean())
    return np.array([float(extent[1]), float(extent[2] / max(float(extent[0]), 1e-9)), roundness, rough])


def mesh_signature(data: bytes) -> np.ndarray:
    v = _centred(obj_vertices(data))
    heights = np.clip(((v[:, 1] + 0.5) * 16).astype(int), 0, 15)
    angles = np.clip(((np.arctan2(v[:, 2], v[:, 0]) + np.pi) / (2 * np.pi) * 16).astype(int), 0, 15)
    radius = np.hypot(v[:, 0], v[:, 2])
    profile = np.zeros((2, 16))
    for axis, bins in enumerate((heights, angles)):
        for b in range(16):
            chosen = radius[bins == b]
            profile[axis, b] = chosen.max() if len(chosen) else 0.0
    return profile.reshape(-1)


def measures(modality: str, data: bytes) -> np.ndarray:
    return mesh_measures(data) if modality == "mesh" else image_measures(data)


def signature(modality: str, data: bytes) -> np.ndarray:
    return mesh_signature(data) if modality == "mesh" else image_signature(data)

"""Texture photographs for ``image.texture``: scikit-image's brick, grass and gravel.

numpy and scikit-image only (no torch), so the quality checks that score the shipped
ONNX model load exactly the same hold-out strips as training does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from museforge.export.datasets import Fingerprint, TrainingData, installed_version, packaged_image

__all__ = ["FAMILIES", "HELD_OUT_COLUMNS", "TEXTURE_TRAINING_DATA", "TextureSplit", "texture_split"]

# Index order is the model's ``family`` input, so never reorder; append new families.
# Only photographs that are (near) stationary make sense for a texture generator: the
# other skimage.data images are objects, scenes or microscopy, not surfaces.
FAMILIES: tuple[str, ...] = ("brick", "grass", "gravel")
# The right-most strip of every photograph is held out for the quality checks. A strip,
# not random crops: random crops of one photograph overlap whatever they are split by.
HELD_OUT_COLUMNS = 128


@dataclass(frozen=True)
class TextureSplit:
    """Per-family training region and held-out strip, float32 in [0, 1], 2-D."""

    train: dict[str, np.ndarray]  # (512, 384): the left columns
    held_out: dict[str, np.ndarray]  # (512, 128): the right-most columns
    fingerprint: str  # sha256 over the source pixels + split parameters, for manifests
    source: str


def _photograph(name: str) -> np.ndarray:
    image = packaged_image(f"skimage:{name}")
    if image.ndim != 2:
        raise ValueError(f"skimage.data.{name}() should be 2-D, got {image.shape}")
    return image


def texture_split(held_out_columns: int = HELD_OUT_COLUMNS) -> TextureSplit:
    """Split every photograph into a training region and a held-out right-hand strip."""
    fingerprint = Fingerprint()
    train: dict[str, np.ndarray] = {}
    held_out: dict[str, np.ndarray] = {}
    shapes: list[str] = []
    for name in FAMILIES:
        raw = _photograph(name)
        if not 0 < held_out_columns < raw.shape[1]:
            raise ValueError(f"held_out_columns must be in (0, {raw.shape[1]}), got {held_out_columns}")
        fingerprint.add(name, raw)
        pixels = raw.astype(np.float32) / 255.0
        cut = raw.shape[1] - held_out_columns
        train[name] = np.ascontiguousarray(pixels[:, :cut])
        held_out[name] = np.ascontiguousarray(pixels[:, cut:])
        shapes.append(f"{name} {raw.shape[0]}x{raw.shape[1]}")
    fingerprint.add(f"families={','.join(FAMILIES)};held_out_columns={held_out_columns}")
    return TextureSplit(
        train=train,
        held_out=held_out,
        fingerprint=fingerprint.hexdigest(),
        source=f"scikit-image skimage.data photographs ({', '.join(shapes)}); "
        f"right-most {held_out_columns} columns held out",
    )


# What the recipes train on, and the terms it comes under (see docs/licences.md).
TEXTURE_TRAINING_DATA = (
    TrainingData(
        name='skimage.data.brick',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=installed_version('scikit-image')),
    TrainingData(
        name='skimage.data.grass',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=installed_version('scikit-image')),
    TrainingData(
        name='skimage.data.gravel',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=installed_version('scikit-image')),
)

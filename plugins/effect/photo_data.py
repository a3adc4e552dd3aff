"""Photographs the effects train on: scikit-image's and scikit-learn's packaged pictures.

Whole photographs are held out (never crops of a training photograph), so every
quality figure is measured on scenes the networks never saw. numpy + the two packages
only (no torch): the quality tests load exactly what training loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from museforge.export.datasets import Fingerprint, TrainingData, installed_version, packaged_image

__all__ = ["HELD_OUT", "PHOTOS_TRAINING_DATA", "TRAIN", "PhotoSplit", "load_photo", "photo_split"]

# Natural photographs, scans and textures with real detail. Left out: drawings and
# synthetic images (logo, page, text, chessboards, phantom, horse), and images that are
# blurred on purpose (clock_motion). motorcycle_left/right are one stereo scene: both
# train. Each entry is "package:name".
TRAIN: tuple[str, ...] = (
    "skimage:astronaut", "skimage:chelsea", "skimage:camera", "skimage:coins", "skimage:moon",
    "skimage:motorcycle_left", "skimage:motorcycle_right", "skimage:hubble_deep_field",
    "skimage:immunohistochemistry", "skimage:retina", "skimage:cell", "skimage:brick",
    "skimage:grass", "skimage:gravel", "sklearn:china.jpg",
)
HELD_OUT: tuple[str, ...] = ("skimage:coffee", "skimage:rocket", "sklearn:flower.jpg")


@dataclass(frozen=True)
class PhotoSplit:
    """RGB float32 photographs in [0, 1] (grey ones repeated to three channels)."""

    train: tuple[np.ndarray, ...]
    held_out: tuple[np.ndarray, ...]
    train_names: tuple[str, ...]
    held_out_names: tuple[str, ...]
    fingerprint: str  # sha256 over every source pixel and the split, for manifests
    source: str


def load_photo(entry: str) -> np.ndarray:
    """One packaged photograph ("package:name") as uint8 H x W x 3 (grey repeated, alpha dropped)."""
    image = packaged_image(entry)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def photo_split(train: tuple[str, ...] = TRAIN, held_out: tuple[str, ...] = HELD_OUT) -> PhotoSplit:
    overlap = set(train) & set(held_out)
    if overlap:
        raise ValueError(f"photographs in both splits: {sorted(overlap)}")
    fingerprint = Fingerprint()
    loaded: dict[str, np.ndarray] = {}
    for entry in (*train, *held_out):
        raw = load_photo(entry)
        fingerprint.add(entry, raw)
        loaded[entry] = raw.astype(np.float32) / 255.0
    fingerprint.add(f"train={','.join(train)};held_out={','.join(held_out)}")
    return PhotoSplit(
        train=tuple(loaded[e] for e in train),
        held_out=tuple(loaded[e] for e in held_out),
        train_names=train,
        held_out_names=held_out,
        fingerprint=fingerprint.hexdigest(),
        source=f"{len(train)} packaged photographs for training ({', '.join(train)}); "
        f"held out whole: {', '.join(held_out)}",
    )


# What the recipes train on, and the terms it comes under (see docs/licences.md).
SKIMAGE = installed_version('scikit-image')  # the package the pictures ship in, as installed
PHOTOS_TRAINING_DATA = (
    TrainingData(
        name='skimage.data.astronaut',
        licence='public domain',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.chelsea',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.camera',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.coins',
        licence='unverified',
        registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.moon',
        licence='unverified',
        registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.stereo_motorcycle (left view)',
        licence='unverified',
        registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.stereo_motorcycle (right view)',
        licence='unverified',
        registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.hubble_deep_field',
        licence='public domain',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.immunohistochemistry',
        licence='unverified',
        registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.retina',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.cell',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.brick',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.grass',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name='skimage.data.gravel',
        licence='CC0-1.0',
        commercial_use=True, registry='pypi', package='scikit-image',
        version=SKIMAGE),
    TrainingData(
        name="sklearn.datasets.load_sample_image('china.jpg')",
        licence='CC-BY-2.0',
        attribution=('china.jpg: photo by danielbuechele '
                     '(https://www.flickr.com/photos/danielbuechele/6061409035/), CC BY 2.0 '
                     '(https://creativecommons.org/licenses/by/2.0/); modified (cropped/resampled)'),
        commercial_use=True, registry='pypi', package='scikit-learn',
        version=installed_version('scikit-learn')),
)

"""Generic machinery for packaged data sets: sources, fingerprints and resizing.

The data sets themselves live in the plugins that train on them. Only numpy and Pillow
are imported here (scikit-learn and scikit-image lazily, by the sources), so quality
checks that run the shipped ONNX models load the same hold-out splits without torch.
"""

from __future__ import annotations

import hashlib
from importlib import metadata

import numpy as np
from PIL import Image

from museforge.runtime.manifest import TrainingData

__all__ = ["Fingerprint", "TrainingData", "installed_version", "packaged_image", "upscale_images"]


class Fingerprint:
    """sha256 over a data set's raw content and the parameters that shape it, for manifests."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, *parts: str | bytes | np.ndarray) -> Fingerprint:
        """Hash text (UTF-8), bytes or an array's C-order bytes, in order."""
        for part in parts:
            if isinstance(part, str):
                self._digest.update(part.encode())
            elif isinstance(part, np.ndarray):
                self._digest.update(part.tobytes())
            else:
                self._digest.update(part)
        return self

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def installed_version(package: str) -> str:
    """The installed distribution's version, which a manifest records for data that ships inside a
    package ('' when it is not installed: serving imports the data modules without the extras)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def packaged_image(entry: str) -> np.ndarray:
    """A picture that ships inside a PyPI package, as uint8 pixels (H x W or H x W x C).

    ``entry`` is "skimage:NAME" (a ``skimage.data`` function; "motorcycle_left" and
    "motorcycle_right" are the two views of ``stereo_motorcycle``) or "sklearn:FILE"
    (``sklearn.datasets.load_sample_image``). The packages are imported lazily: they are
    training and quality extras, not serving dependencies.
    """
    package, _, name = entry.partition(":")
    if package == "skimage":
        from skimage import data

        if name == "motorcycle_left" or name == "motorcycle_right":
            left, right, _ = data.stereo_motorcycle()
            image = np.asarray(left if name.endswith("left") else right)
        else:
            image = np.asarray(getattr(data, name)())
    elif package == "sklearn":
        from sklearn.datasets import load_sample_image

        image = np.asarray(load_sample_image(name))
    else:
        raise ValueError(f"unknown picture source {entry!r}")
    if image.dtype != np.uint8:
        raise ValueError(f"{entry}: expected uint8 pixels, got {image.dtype}")
    return image


def upscale_images(images: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    """Resize (N, h, w) float images in [0, 1] to (N, size, size) float32, clipped to [0, 1].

    Each image goes through Pillow as a float32 mode "F" image: full precision, no 8-bit
    rounding. Bicubic overshoots slightly at strong edges; the clip keeps [0, 1] exact.
    """
    out = np.empty((len(images), size, size), dtype=np.float32)
    for i, img in enumerate(images):
        pil = Image.fromarray(img.astype(np.float32))
        out[i] = np.asarray(pil.resize((size, size), resample))
    return np.clip(out, 0.0, 1.0)

"""scikit-learn's handwritten digits for ``image.digits``, upscaled and split (no torch).

numpy, scikit-learn and Pillow only, so the quality checks that score the shipped ONNX
model load exactly the hold-out split the GAN never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from museforge.export.datasets import Fingerprint, upscale_images

__all__ = ["DIGITS_SIZE", "DigitsSplit", "digits_28"]

# MNIST-sized output, so the model looks like what users expect of a digits generator.
DIGITS_SIZE = 28
# load_digits stores 4x4-block counts, so pixel values are integers in 0..16.
_DIGITS_MAX = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    """A deterministic stratified train/hold-out split of the upscaled digits."""

    train_x: np.ndarray  # float32 (N, 28, 28) in [0, 1]
    train_y: np.ndarray  # int64 (N,)
    test_x: np.ndarray
    test_y: np.ndarray
    fingerprint: str  # sha256 over raw data + split parameters, for manifests
    source: str


def digits_28(test_fraction: float = 0.2, seed: int = 0) -> DigitsSplit:
    """scikit-learn's 8x8 handwritten digits upscaled to 28x28, split stratified by digit.

    The split depends only on ``test_fraction`` and ``seed``, so training and the
    quality checks agree on which images are held out.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    # Imported lazily: scikit-learn is a training extra, not a serving dependency.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    raw_images = np.ascontiguousarray(bunch.images, dtype=np.float64)
    raw_targets = np.ascontiguousarray(bunch.target, dtype=np.int64)
    # repr() of the float round-trips exactly, so equal parameters hash equally.
    fingerprint = Fingerprint().add(
        raw_images, raw_targets, f"size={DIGITS_SIZE};test_fraction={test_fraction!r};seed={seed}")

    # Bilinear: it cannot overshoot, so the clip to [0, 1] changes nothing here.
    images = upscale_images(raw_images / _DIGITS_MAX, DIGITS_SIZE, Image.Resampling.BILINEAR)
    train_x, test_x, train_y, test_y = train_test_split(
        images,
        raw_targets,
        test_size=test_fraction,
        random_state=seed,
        stratify=raw_targets,
    )
    return DigitsSplit(
        train_x=np.ascontiguousarray(train_x, dtype=np.float32),
        train_y=np.ascontiguousarray(train_y, dtype=np.int64),
        test_x=np.ascontiguousarray(test_x, dtype=np.float32),
        test_y=np.ascontiguousarray(test_y, dtype=np.int64),
        fingerprint=fingerprint.hexdigest(),
        source=f"scikit-learn load_digits (UCI optdigits), {len(raw_targets)} images",
    )

"""Upscaling of small model outputs to a requested size."""

from __future__ import annotations

import numpy as np
from PIL import Image


def upscale(pixels: np.ndarray, size: int) -> np.ndarray:
    """A float image in [0, 1] resized to ``size``×``size`` with a Lanczos filter."""
    if pixels.shape[0] == size and pixels.shape[1] == size:
        return pixels
    resized = Image.fromarray(np.asarray(pixels, np.float32), mode="F").resize(
        (size, size), Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(resized), 0.0, 1.0)

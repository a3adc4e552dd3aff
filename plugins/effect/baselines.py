"""The classical methods each effect is measured against (numpy + Pillow, no torch)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize(image: np.ndarray, height: int, width: int,
           method: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """Resize an HxWxC float image channel by channel in float precision (no 8-bit rounding)."""
    planes = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, c], np.float32), mode="F")
                   .resize((width, height), method, reducing_gap=None), np.float32)
        for c in range(image.shape[2])
    ]
    return np.stack(planes, axis=2)


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """The degradation the upscalers invert: bicubic (antialiased) downscale by ``factor``."""
    h, w = image.shape[0] // factor, image.shape[1] // factor
    return np.clip(resize(image[: h * factor, : w * factor], h, w), 0.0, 1.0)


def bicubic_upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return np.clip(resize(image, image.shape[0] * factor, image.shape[1] * factor), 0.0, 1.0)

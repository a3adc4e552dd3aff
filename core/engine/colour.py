"""sRGB <-> scene-linear conversions (IEC 61966-2-1 transfer function)."""

from __future__ import annotations

import numpy as np


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0.04045) + 0.055) / 1.055) ** 2.4
                    ).astype(np.float32)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Encode linear light; values above 1 stay above 1 (the curve extended), below 0 clip."""
    v = np.maximum(np.asarray(values, dtype=np.float32), 0.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.maximum(v, 0.0031308) ** (1 / 2.4) - 0.055
                    ).astype(np.float32)


def display_data(data: np.ndarray, colorspace: str) -> np.ndarray:
    """Image data ready for a display format: linear colour encoded to sRGB, alpha as is."""
    if colorspace != "linear":
        return np.asarray(data)
    array = np.asarray(data, dtype=np.float32)
    if array.ndim == 3 and array.shape[2] in (2, 4):  # grey+alpha / RGBA: leave alpha alone
        return np.concatenate([linear_to_srgb(array[..., :-1]), array[..., -1:]], axis=2)
    return linear_to_srgb(array)

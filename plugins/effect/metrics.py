"""Image quality figures, numpy only, so tests can score the shipped ONNX models."""

from __future__ import annotations

import numpy as np


def psnr(reference: np.ndarray, test: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of ``test`` against ``reference`` (same shape)."""
    if reference.shape != test.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {test.shape}")
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an HxWx3 (or 3xHxW when ``rgb.shape[0] == 3``) image."""
    weights = np.array([0.299, 0.587, 0.114], np.float64)
    if rgb.ndim == 3 and rgb.shape[0] == 3 and rgb.shape[2] != 3:
        return np.tensordot(weights, rgb, axes=(0, 0))
    return np.asarray(rgb, np.float64) @ weights


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over size x size windows (valid part), via summed-area tables."""
    c = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0))), axis=0), axis=1)
    return (c[size:, size:] - c[:-size, size:] - c[size:, :-size] + c[:-size, :-size]) / (size * size)


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7, peak: float = 1.0) -> float:
    """Mean structural similarity of two 2-D images (uniform window, Wang et al. constants)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two equal 2-D images, got {a.shape} and {b.shape}")
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b = _box(a, window), _box(b, window)
    n = window * window
    cov = n / (n - 1)  # sample (co)variances, as scikit-image does
    var_a = (_box(a * a, window) - mu_a**2) * cov
    var_b = (_box(b * b, window) - mu_b**2) * cov
    cov_ab = (_box(a * b, window) - mu_a * mu_b) * cov
    s = ((2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())

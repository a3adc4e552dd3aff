"""Checks every image quality module makes of generated pictures before scoring them (numpy only)."""

from __future__ import annotations

import numpy as np

# A little slack for float rounding; anything further means a wrong scale (0..255?).
SLACK = 1e-3


def check_pixels(label: str, images: np.ndarray) -> None:
    """Raise ValueError unless every value of ``images`` is finite and in [0, 1] (with ``SLACK``)."""
    if not np.isfinite(images).all():
        raise ValueError(f"{label} contains NaN or infinite values")
    if images.min() < -SLACK or images.max() > 1.0 + SLACK:
        raise ValueError(f"{label} values must lie in [0, 1], "
                         f"got [{float(images.min()):.3g}, {float(images.max()):.3g}]")

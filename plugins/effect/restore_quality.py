"""Held-out figures for effect.restore: JPEG round trips at several qualities (numpy + Pillow)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from .denoise_quality import BLUR_SIGMAS, Restore, evaluate_levels, session_restorer
from .jpeg_constraint import constrain_to_jpeg
from .photo_data import PhotoSplit

EVAL_QUALITIES: tuple[int, ...] = (10, 20, 30)


def jpeg_round_trip(photo: np.ndarray, quality: int) -> np.ndarray:
    """Save an HxWx3 float photo as an RGB JPEG with Pillow (default 4:2:0 subsampling), decode."""
    pixels = np.clip(np.rint(np.asarray(photo, np.float32) * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), np.float32) / np.float32(255.0)


def constrained(network: Restore) -> Restore:
    """``network`` followed by the luma quantisation-constraint projection (when the picture's
    coefficients confirm the stated quality), as the effect serves it."""

    def run(decoded: np.ndarray, quality: float) -> np.ndarray:
        result = network(decoded, quality).transpose(2, 0, 1)
        projected, _ = constrain_to_jpeg(result, decoded.transpose(2, 0, 1), int(quality))
        return projected.transpose(1, 2, 0)

    return run


def evaluate_restorer(restore: Restore, photos: Sequence[np.ndarray], names: Sequence[str],
                      qualities: Sequence[int] = EVAL_QUALITIES,
                      blur_sigmas: Sequence[float] = BLUR_SIGMAS) -> dict[str, Any]:
    """Mean RGB PSNR over the photos per JPEG quality: model, compressed input, best Gaussian blur."""
    def compressed(index: int, photo: np.ndarray, quality: int) -> np.ndarray:
        return jpeg_round_trip(photo, quality)

    return {**evaluate_levels(restore, photos, names, qualities, compressed, "q", "jpeg", blur_sigmas),
            "qualities": list(qualities)}


def evaluate_session(session: Any, split: PhotoSplit, qualities: Sequence[int] = EVAL_QUALITIES,
                     blur_sigmas: Sequence[float] = BLUR_SIGMAS,
                     jpeg_constraint: bool = True) -> dict[str, Any]:
    """Held-out figures of the effect as served (``psnr_model_*``): the network, then by default the
    luma quantisation-constraint projection, whose share shows in ``psnr_network_*`` (network alone)."""
    network = session_restorer(session, "quality")
    photos, names = split.held_out, split.held_out_names
    if not jpeg_constraint:
        return {**evaluate_restorer(network, photos, names, qualities, blur_sigmas), "jpeg_constraint": False}
    figures = evaluate_restorer(constrained(network), photos, names, qualities, blur_sigmas)
    alone = evaluate_restorer(network, photos, names, qualities, (0.0,))
    return {**figures, **{f"psnr_network_q{q}": alone[f"psnr_model_q{q}"] for q in qualities},
            "jpeg_constraint": True}

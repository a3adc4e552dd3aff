"""Held-out figures for the upscalers against bicubic (numpy only: tests score the ONNX)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .baselines import bicubic_upscale, downscale
from .metrics import luminance, psnr, ssim
from .photo_data import PhotoSplit

Upscale = Callable[[np.ndarray], np.ndarray]  # HxWx3 low-res -> (H*s)x(W*s)x3


def evaluate_upscaler(upscale: Upscale, scale: int, photos: Sequence[np.ndarray],
                      names: Sequence[str]) -> dict[str, Any]:
    """PSNR (RGB, ``scale`` px border shaved) and luminance SSIM, model vs bicubic, per photo."""
    per_photo: dict[str, dict[str, float]] = {}
    for name, photo in zip(names, photos, strict=True):
        h, w = (photo.shape[0] // scale) * scale, (photo.shape[1] // scale) * scale
        truth = photo[:h, :w]
        small = downscale(truth, scale)
        shave = (slice(scale, -scale), slice(scale, -scale))
        figures = {}
        for method, result in (("model", upscale(small)), ("bicubic", bicubic_upscale(small, scale))):
            figures[f"psnr_{method}"] = psnr(truth[shave], result[shave])
            figures[f"ssim_{method}"] = ssim(luminance(truth[shave]), luminance(result[shave]))
        per_photo[name] = figures
    mean = {k: float(np.mean([f[k] for f in per_photo.values()])) for k in next(iter(per_photo.values()))}
    return {**mean, "psnr_gain_db": mean["psnr_model"] - mean["psnr_bicubic"],
            "per_photo": per_photo, "scale": scale}


def session_upscaler(session: Any) -> Upscale:
    """Run an ONNX session on a whole low-res photo (HxWx3 float32)."""

    def run(small: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(small.transpose(2, 0, 1)[None], np.float32)
        return np.asarray(session.run(["result"], {"image": x})[0][0]).transpose(1, 2, 0)

    return run


def evaluate_session(session: Any, split: PhotoSplit, scale: int) -> dict[str, Any]:
    """Held-out figures of an upscaler's ONNX session (what the recipe records)."""
    return evaluate_upscaler(session_upscaler(session), scale, split.held_out, split.held_out_names)

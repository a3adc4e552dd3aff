"""Held-out figures for effect.denoise, and the pieces effect.restore's evaluation shares.

The degradation (additive white Gaussian noise, clipped to [0, 1] as any stored picture
is), the Gaussian-blur baseline with its radius searched on the held-out photographs,
and whole-photo ONNX runs. numpy only (no torch, no scipy), so the tests score the
shipped ONNX models with the very functions the recipes used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from museforge import mirror_index

from .metrics import psnr
from .photo_data import PhotoSplit

# (photo HxWx3 in [0, 1], condition) -> restored HxWx3
Restore = Callable[[np.ndarray, float], np.ndarray]
# Gaussian standard deviations (pixels) tried for the blur baseline; 0 is "leave as is".
BLUR_SIGMAS: tuple[float, ...] = (0.0, *np.round(np.arange(0.3, 3.01, 0.1), 2).tolist())
COARSE_BLUR_SIGMAS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)  # quick exports only


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an HxWxC image, mirrored at the border as the tiler mirrors."""
    if sigma <= 0:
        return np.asarray(image, np.float32)
    radius = max(1, int(np.ceil(4.0 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    out = np.asarray(image, np.float32)
    for axis in (0, 1):
        size = out.shape[axis]
        moved = np.moveaxis(out, axis, 0)
        padded = np.take(moved, mirror_index(np.arange(-radius, size + radius), size), axis=0)
        acc = np.zeros(moved.shape, np.float32)
        for k, tap in enumerate(taps):
            acc += tap * padded[k:k + size]
        out = np.moveaxis(acc, 0, axis)
    return np.ascontiguousarray(out)


def best_blur(truths: Sequence[np.ndarray], degraded: Sequence[np.ndarray],
              sigmas: Sequence[float] = BLUR_SIGMAS) -> tuple[float, list[float]]:
    """The blur (searched on these photos) with the best mean PSNR, and its per-photo PSNRs."""
    best_sigma, best_scores, best_mean = 0.0, [], -np.inf
    for sigma in sigmas:
        scores = [psnr(t, np.clip(gaussian_blur(d, sigma), 0.0, 1.0)) for t, d in zip(truths, degraded,
                                                                                       strict=True)]
        if float(np.mean(scores)) > best_mean:
            best_sigma, best_scores, best_mean = float(sigma), scores, float(np.mean(scores))
    return best_sigma, best_scores


def pad_even(image: np.ndarray) -> np.ndarray:
    """Mirror one row / column onto an HxWxC image with an odd side (the network folds 2x2)."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if not (pad_h or pad_w):
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def session_restorer(session: Any, condition: str) -> Restore:
    """Run an ONNX restorer on a whole photo (HxWx3 float32), with its condition input."""

    def run(photo: np.ndarray, value: float) -> np.ndarray:
        h, w = photo.shape[:2]
        x = np.ascontiguousarray(pad_even(photo).transpose(2, 0, 1)[None], np.float32)
        feed = {"image": x, condition: np.array([value], np.float32)}
        return np.asarray(session.run(["result"], feed)[0][0]).transpose(1, 2, 0)[:h, :w]

    return run


def summarise(per_photo: dict[str, dict[str, Any]], levels: Sequence[int], tag: str,
              degraded: str) -> dict[str, Any]:
    """Means over photos for each level: model, degraded input, best blur; and the gains."""
    figures: dict[str, Any] = {}
    for level in levels:
        key = f"{tag}{level}"
        photos = [p[key] for p in per_photo.values()]
        for what in ("model", degraded, "blur"):
            figures[f"psnr_{what}_{key}"] = float(np.mean([p[f"psnr_{what}"] for p in photos]))
        figures[f"blur_sigma_{key}"] = photos[0]["blur_sigma"]
        model = figures[f"psnr_model_{key}"]
        figures[f"gain_over_{degraded}_db_{key}"] = model - figures[f"psnr_{degraded}_{key}"]
        figures[f"gain_over_blur_db_{key}"] = model - figures[f"psnr_blur_{key}"]
    return figures


EVAL_SIGMAS: tuple[int, ...] = (5, 15, 25, 50)  # noise levels reported, on the 0-255 scale
EVAL_SEED = 20261123


def add_noise(photo: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``photo`` plus white Gaussian noise of ``sigma`` (0-255 scale), clipped to [0, 1]."""
    noise = rng.standard_normal(photo.shape, dtype=np.float32) * np.float32(sigma / 255.0)
    return np.clip(photo + noise, 0.0, 1.0).astype(np.float32)


def evaluate_levels(restore: Restore, photos: Sequence[np.ndarray], names: Sequence[str],
                    levels: Sequence[int], degrade: Callable[[int, np.ndarray, int], np.ndarray],
                    tag: str, degraded_name: str, blur_sigmas: Sequence[float]) -> dict[str, Any]:
    """Mean RGB PSNR per degradation level: model, degraded input, best Gaussian blur.

    ``degrade(photo_index, photo, level)`` makes the input; the model is told the level.
    """
    per_photo: dict[str, dict[str, Any]] = {name: {} for name in names}
    for level in levels:
        degraded = [degrade(i, p, level) for i, p in enumerate(photos)]
        blur_sigma, blur_scores = best_blur(photos, degraded, blur_sigmas)
        for name, truth, bad, blur_score in zip(names, photos, degraded, blur_scores, strict=True):
            per_photo[name][f"{tag}{level}"] = {
                "psnr_model": psnr(truth, np.clip(restore(bad, float(level)), 0.0, 1.0)),
                f"psnr_{degraded_name}": psnr(truth, bad),
                "psnr_blur": blur_score,
                "blur_sigma": blur_sigma,
            }
    return {**summarise(per_photo, levels, tag, degraded_name), "per_photo": per_photo}


def evaluate_denoiser(denoise: Restore, photos: Sequence[np.ndarray], names: Sequence[str],
                      sigmas: Sequence[int] = EVAL_SIGMAS,
                      blur_sigmas: Sequence[float] = BLUR_SIGMAS) -> dict[str, Any]:
    """Mean RGB PSNR over the photos per noise level: model, noisy input, best Gaussian blur."""
    def noisy(index: int, photo: np.ndarray, sigma: int) -> np.ndarray:
        return add_noise(photo, sigma, np.random.default_rng([EVAL_SEED, index, sigma]))

    return {**evaluate_levels(denoise, photos, names, sigmas, noisy, "sigma", "noisy", blur_sigmas),
            "sigmas": list(sigmas)}


def evaluate_session(session: Any, split: PhotoSplit, sigmas: Sequence[int] = EVAL_SIGMAS,
                     blur_sigmas: Sequence[float] = BLUR_SIGMAS) -> dict[str, Any]:
    """Held-out figures of a denoiser's ONNX session (what the recipe records)."""
    return evaluate_denoiser(session_restorer(session, "sigma"), split.held_out, split.held_out_names,
                             sigmas, blur_sigmas)

"""Held-out figures for frame interpolation against the linear blend (numpy + onnxruntime only).

The model is run exactly as the server runs it: both frames stacked, tiled with the
effect's halo and cross-fade (``interpolate.interpolate_pair``), the ONNX session in
place of the server. The baseline is the linear blend (1 - t) * a + t * b.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from . import interpolate_data as data
from .interpolate import Infer, interpolate_pair
from .metrics import luminance, psnr, ssim
from .photo_data import PhotoSplit

SHAVE = 8  # border px left out of the figures: content entering the frame is unknowable
EVAL_TILE = 256  # the effect's default tile
QUARTER = 0.25  # a second time, as frames=3 asks for

T = TypeVar("T")


def drain(generator: Generator[Any, None, T]) -> T:
    """Run a progress-yielding generator to the end; its return value."""
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def session_infer(session: Any) -> Infer:
    def infer(feed: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(session.run(["result"], dict(feed))[0])

    return infer


def interpolate_frames(infer: Infer, first: np.ndarray, second: np.ndarray, t: float,
                       tile: int = EVAL_TILE) -> np.ndarray:
    """The frame at ``t`` (HxWx3) between two HxWx3 frames in [0, 1]."""
    pair = np.concatenate([first.transpose(2, 0, 1), second.transpose(2, 0, 1)]).astype(np.float32)
    return drain(interpolate_pair(infer, pair, t, tile)).transpose(1, 2, 0)


def blend(first: np.ndarray, second: np.ndarray, t: float) -> np.ndarray:
    return ((1.0 - t) * first + t * second).astype(np.float32)


def score_triplets(infer: Infer, triplets: Sequence[data.Triplet],
                   tile: int = EVAL_TILE) -> dict[str, Any]:
    """Mean PSNR (RGB) and luminance SSIM, model vs blend, overall and per photograph."""
    shave = (slice(SHAVE, -SHAVE), slice(SHAVE, -SHAVE))
    rows: dict[str, list[dict[str, float]]] = {}
    for tri in triplets:
        figures = {}
        for method, result in (("model", interpolate_frames(infer, tri.first, tri.second, tri.t, tile)),
                               ("blend", blend(tri.first, tri.second, tri.t))):
            truth, got = tri.middle[shave], result[shave]
            figures[f"psnr_{method}"] = psnr(truth, got)
            figures[f"ssim_{method}"] = ssim(luminance(truth), luminance(got))
        rows.setdefault(tri.source, []).append(figures)
    every = [f for photo in rows.values() for f in photo]
    keys = list(every[0])
    mean = {k: float(np.mean([f[k] for f in every])) for k in keys}
    per_photo = {name: {k: float(np.mean([f[k] for f in photo])) for k in keys}
                 for name, photo in rows.items()}
    return {**mean, "psnr_gain_db": mean["psnr_model"] - mean["psnr_blend"], "per_photo": per_photo}


def evaluate_interpolator(infer: Infer, photos: Sequence[np.ndarray], names: Sequence[str],
                          per_photo: int = data.HELD_OUT_PER_PHOTO,
                          size: int = data.HELD_OUT_CROP) -> dict[str, Any]:
    """Midpoint figures on the held-out triplets, and the same crops and motions at t = 1/4."""
    middle = score_triplets(infer, data.held_out_triplets(photos, names, 0.5, per_photo, size))
    quarter = score_triplets(infer, data.held_out_triplets(photos, names, QUARTER, per_photo, size))
    quarter.pop("per_photo")
    return {
        **middle,
        f"t_{QUARTER}": quarter,
        "t": 0.5,
        "triplets": per_photo * len(photos),
        "crop": size,
        "shave": SHAVE,
        "tile": EVAL_TILE,
        "seed": data.HELD_OUT_SEED,
        "motion": motion_description(),
    }


def motion_description() -> str:
    return (f"uniform per triplet, between the outer frames: shift +-{data.MAX_SHIFT:g} px per axis, "
            f"zoom +-{data.MAX_ZOOM * 100:g}%, rotation +-{data.MAX_ROTATION:g} deg; Keys cubic sampling")


def evaluate_session(session: Any, split: PhotoSplit, quick: bool = False) -> dict[str, Any]:
    """Held-out figures of the ONNX interpolator (what the recipe records; one triplet a photo if quick)."""
    return evaluate_interpolator(session_infer(session), split.held_out, split.held_out_names,
                                 per_photo=1 if quick else data.HELD_OUT_PER_PHOTO)

"""``museforge export effect.restore``: train the quality-conditioned JPEG artefact remover."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from museforge.export.pipeline import RecipeContext, TrainedModel

from .denoise_quality import COARSE_BLUR_SIGMAS
from .denoise_recipe import restorer_spec
from .photo_data import PHOTOS_TRAINING_DATA, photo_split
from .restoration_net import DEPTH, ConditionedRestorer
from .restore_quality import evaluate_session, jpeg_round_trip
from .supervised import MakeBatch, random_patches, train_supervised

PATCH = 64
BATCH = 16
# Gains rise slowly with steps and width. At denoise's 48 channels: +0.56 / +0.38 dB at
# q10 / q30 after 1,000 steps, +0.95 / +0.81 after 10,000 (flat after 5,000). At 64:
# +1.02 / +0.88 after 10,000. Worse in trials: 64 channels with a per-patch log-MSE loss
# (+0.40 / +0.21 after 7,000 steps). 6 blocks at 64 channels, 7,000 steps (1,851 s):
# +1.04 / +0.99 / +0.88 at q10 / q20 / q30, no better than 4 blocks and 1.5x slower to serve.
# Uniform 5-50 qualities gave +1.02 / +0.97 / +0.88 at q10 / q20 / q30; drawing 60% of the crops
# from 10-30 gave +1.12 / +1.05 / +0.93 (1,319 s), and +1.23 / +0.86 / +0.76 at q5 / q40 / q50
# (uniform: +1.16 / +0.83 / +0.74). At 48 channels and 1,000 steps, one-hot 8x8 block-grid
# phase channels (+0.38 / +0.23) and 128-px patches (+0.36 / +0.22) were worse than the plain
# network (+0.42 / +0.28). Weighting the loss by quality (QUALITY_WEIGHTING, same crops and
# steps) took q10 / q20 / q30 from +1.12 / +1.05 / +0.93 to +1.17 / +1.12 / +1.03 (network
# alone, before the served luma projection), but a re-run with other (then unseeded) initial
# weights gave +1.14 / +1.10 / +0.99. 15,000 steps, seeded: +1.21 / +1.17 / +1.07 with seed 0
# (1,253 s), +1.18 / +1.13 / +1.00 with seed 1.
FULL_STEPS = 15000
WIDTH = 64
QUICK_STEPS = 4
# JPEG errors are small and mostly structured: with L1 (whose gradient is only the error's
# sign) or a larger step, the network sat at the identity for hundreds of steps in trials.
LR = 2e-4
QUALITY_RANGE = (5, 50)  # JPEG qualities trained on (and accepted by the effect)
# Most artefact removal is asked for in 10-30 (the range); this share of the
# patches is drawn there, the rest over the whole range.
QUALITY_FOCUS = (10, 30)
FOCUS_SHARE = 0.6
PERMUTE_COLOURS = True
QUALITY_SCALE = 50.0  # the network sees quality / 50 as its level channel
# The targets are dB gains at each quality, and a dB is a fixed relative change of the squared error;
# JPEG's error at q10 is twice that at q30 (5x from q5 to q50), so a plain L2 loss spends the
# network on the low qualities. Each crop's squared error is weighted by 1 / JPEG's mean squared
# error at its quality (measured on the training photographs) so every quality's dB counts alike.
# (Unlike the per-crop log-MSE above, the weight does not favour flat, easy crops.)
QUALITY_WEIGHTING = True


def jpeg_error_by_quality(photos: Sequence[np.ndarray], qualities: Sequence[int]) -> dict[int, float]:
    """JPEG's mean squared error per pixel value over the photos (pooled by area), per quality."""
    pixels = sum(p.size for p in photos)
    return {int(q): float(sum(np.sum((jpeg_round_trip(p, int(q)) - p) ** 2, dtype=np.float64) for p in photos)
                          / pixels) for q in qualities}


def quality_weights(photos: Sequence[np.ndarray]) -> dict[int, float]:
    """Loss weight per training quality: 1 / JPEG's error there, scaled to 1 at quality 20."""
    error = jpeg_error_by_quality(photos, range(QUALITY_RANGE[0], QUALITY_RANGE[1] + 1))
    return {q: error[20] / e for q, e in error.items()}


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L2 loss with a per-crop weight carried as the target's fourth channel (see make_batch_fn)."""
    return torch.mean(target[:, 3:] * (prediction - target[:, :3]) ** 2)


def make_batch_fn(photos: Sequence[np.ndarray], patch: int,
                  weights: Mapping[int, float] | None = None) -> MakeBatch:
    """Training batches; with ``weights`` (per quality) the target gets a fourth channel holding
    each crop's loss weight, the only way the shared training loop passes it to the loss."""
    def make_batch(rng: np.random.Generator, size: int) -> tuple[list[np.ndarray], np.ndarray]:
        # Each patch is its own JPEG, so its block grid starts at its top-left pixel, as a
        # decoded picture's does: the 2x2 fold then always pairs pixels sharing a chroma
        # sample (served tiles start on even pixels too).
        target = random_patches(photos, rng, size, patch)
        # Shuffle colour channels: the training photographs have few edges between colours
        # of equal brightness (a red petal on green), where chroma must not be smoothed.
        target = np.stack([t[rng.permutation(3)] for t in target]) if PERMUTE_COLOURS else target
        quality = np.where(rng.random(size) < FOCUS_SHARE,
                           rng.integers(QUALITY_FOCUS[0], QUALITY_FOCUS[1] + 1, size),
                           rng.integers(QUALITY_RANGE[0], QUALITY_RANGE[1] + 1, size))
        inputs = np.stack([jpeg_round_trip(t.transpose(1, 2, 0), int(q)).transpose(2, 0, 1)
                           for t, q in zip(target, quality, strict=True)])
        if weights is not None:
            weight = np.array([weights[int(q)] for q in quality], np.float32)
            plane = np.broadcast_to(weight[:, None, None, None], (size, 1, patch, patch))
            target = np.concatenate([target, plane], axis=1)
        return [inputs, quality.astype(np.float32)], target

    return make_batch


def build(ctx: RecipeContext) -> TrainedModel:
    ctx.use(*PHOTOS_TRAINING_DATA)
    split = photo_split()
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    weights = quality_weights(split.train) if QUALITY_WEIGHTING else None
    levels = (float(QUALITY_RANGE[0]), float(QUALITY_RANGE[1]))
    loss = weighted_mse if weights is not None else nn.functional.mse_loss
    model = train_supervised(
        ConditionedRestorer(0.0, QUALITY_SCALE, width=WIDTH), make_batch_fn(split.train, PATCH, weights),
        steps=steps, batch=BATCH, seed=ctx.seed, lr=LR, hooks=ctx.hooks, loss_fn=loss)
    return TrainedModel(
        module=model,
        spec=restorer_spec("quality", levels, levels),
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "degradation": f"Pillow JPEG round trip (RGB, default 4:2:0 subsampling), quality "
                 f"{FOCUS_SHARE:.0%} uniform in {QUALITY_FOCUS[0]}..{QUALITY_FOCUS[1]}, the rest uniform in "
                 f"{QUALITY_RANGE[0]}..{QUALITY_RANGE[1]}, each patch compressed on its own"},
        hyperparameters={"steps": steps, "batch": BATCH, "patch": PATCH, "width": WIDTH, "depth": DEPTH,
                         "quality_range": list(QUALITY_RANGE), "quality_focus": list(QUALITY_FOCUS),
                         "focus_share": FOCUS_SHARE,
                         "loss": "L2 weighted by 1 / JPEG's MSE at the crop's quality" if weights else "L2",
                         "optimiser": f"Adam {LR:g}, cosine"},
        evaluate=lambda session: evaluate_session(session, split, (20,), COARSE_BLUR_SIGMAS) if ctx.quick
        else evaluate_session(session, split),
    )

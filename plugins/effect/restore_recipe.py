"""``museforge export effect.restore``: train the quality-conditioned JPEG artefact remover."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
from torch import nn

from museforge.export.photo_data import PhotoSplit, photo_split
from museforge.export.pipeline import RecipeContext, TrainedModel

from .denoise_quality import BLUR_SIGMAS, COARSE_BLUR_SIGMAS, session_restorer
from .denoise_recipe import make_inputs_fn, restorer_spec
from .restoration_net import DEPTH, ConditionedRestorer
from .restore_quality import EVAL_QUALITIES, evaluate_restorer, jpeg_round_trip
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
# network (+0.42 / +0.28).
FULL_STEPS = 10000
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


def make_batch_fn(photos: Sequence[np.ndarray], patch: int) -> MakeBatch:
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
        return [inputs, quality.astype(np.float32)], target

    return make_batch


def evaluate_session(session: ort.InferenceSession, split: PhotoSplit,
                     qualities: Sequence[int] = EVAL_QUALITIES,
                     blur_sigmas: Sequence[float] = BLUR_SIGMAS) -> dict[str, Any]:
    return evaluate_restorer(session_restorer(session, "quality"), split.held_out, split.held_out_names,
                             qualities, blur_sigmas)


def build(ctx: RecipeContext) -> TrainedModel:
    split = photo_split()
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    model = train_supervised(
        ConditionedRestorer(0.0, QUALITY_SCALE, width=WIDTH), make_batch_fn(split.train, PATCH), steps=steps,
        batch=BATCH, seed=ctx.seed, lr=LR, progress=ctx.progress, checkpoint=ctx.checkpoints.save,
        loss_fn=nn.functional.mse_loss)
    return TrainedModel(
        module=model,
        spec=restorer_spec("quality"),
        make_inputs=make_inputs_fn("quality", float(QUALITY_RANGE[0]), float(QUALITY_RANGE[1])),
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "degradation": f"Pillow JPEG round trip (RGB, default 4:2:0 subsampling), quality "
                 f"{FOCUS_SHARE:.0%} uniform in {QUALITY_FOCUS[0]}..{QUALITY_FOCUS[1]}, the rest uniform in "
                 f"{QUALITY_RANGE[0]}..{QUALITY_RANGE[1]}, each patch compressed on its own"},
        hyperparameters={"steps": steps, "batch": BATCH, "patch": PATCH, "width": WIDTH, "depth": DEPTH,
                         "quality_range": list(QUALITY_RANGE), "quality_focus": list(QUALITY_FOCUS),
                         "focus_share": FOCUS_SHARE, "loss": "L2",
                         "optimiser": f"Adam {LR:g}, cosine"},
        evaluate=lambda session: evaluate_session(session, split, (20,), COARSE_BLUR_SIGMAS) if ctx.quick
        else evaluate_session(session, split),
    )

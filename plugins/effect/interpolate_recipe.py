"""``museforge export effect.interpolate``: train the interpolation U-Net on synthetic motion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec, pixels, tiled_run_elements, uniform

from . import interpolate
from .interpolate_data import PIVOT, margin_for, training_batch
from .interpolate_net import MULTIPLE, WIDTHS, Interpolator
from .interpolate_quality import evaluate_session, motion_description
from .photo_data import PHOTOS_TRAINING_DATA, photo_split
from .supervised import MakeBatch, train_supervised

PATCH = 64  # training crop side (a multiple of interpolate_net.MULTIPLE)
BATCH = 16
LR = 5e-4
FULL_STEPS = 1200
QUICK_STEPS = 6

SPEC = ExportSpec(
    inputs=(TensorSpec("image", "float32", ("batch", 3, "height", "width"), example=pixels),
            TensorSpec("image2", "float32", ("batch", 3, "height", "width"), example=pixels),
            TensorSpec("t", "float32", ("batch",), range=(0.0, 1.0), example=uniform(0.05, 0.95))),
    outputs=(TensorSpec("result", "float32", ("batch", 3, "height", "width")),),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=16,
    # The effect's largest run: 2 pairs of tiles at the tile field's maximum (1024) with their halo.
    max_input_elements=2 * tiled_run_elements(3, 1024, interpolate.HALO, MULTIPLE, batch=2) + 2,
    example_axes={"height": 2 * MULTIPLE, "width": 3 * MULTIPLE},
)


def make_batch_fn(photos: Sequence[np.ndarray], patch: int) -> MakeBatch:
    def make_batch(rng: np.random.Generator, size: int) -> tuple[list[np.ndarray], np.ndarray]:
        first, second, times, truth = training_batch(photos, rng, size, patch)
        return [first, second, times], truth

    return make_batch


def build(ctx: RecipeContext) -> TrainedModel:
    if interpolate.MULTIPLE != MULTIPLE:
        raise RuntimeError("interpolate.MULTIPLE (serving) differs from interpolate_net.MULTIPLE")
    ctx.use(*PHOTOS_TRAINING_DATA)
    split = photo_split()
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    model = train_supervised(
        Interpolator(), make_batch_fn(split.train, PATCH), steps=steps, batch=BATCH,
        seed=ctx.seed, lr=LR, hooks=ctx.hooks)
    return TrainedModel(
        module=model,
        spec=SPEC,
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "synthesis": f"triplets rendered from random crops (flips, quarter turns) under "
                 f"continuous camera motion, {motion_description()}",
                 "train_t": "0.5 for half the samples, else uniform in [1/16, 15/16]"},
        hyperparameters={"steps": steps, "batch": BATCH, "patch": PATCH, "widths": list(WIDTHS),
                         "source_margin": margin_for(PATCH, PIVOT), "pivot": PIVOT,
                         "loss": "L1",
                         "optimiser": f"Adam {LR:g}, cosine"},
        evaluate=lambda session: evaluate_session(session, split, ctx.quick),
    )

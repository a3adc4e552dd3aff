"""``museforge export effect.upscale_x2`` / ``_x4``: train the upscalers on packaged photographs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec, pixels, tiled_run_elements

from . import upscale
from .baselines import downscale
from .photo_data import PHOTOS_TRAINING_DATA, photo_split
from .supervised import MakeBatch, random_patches, train_supervised
from .upscale_net import Upscaler
from .upscale_quality import evaluate_session

PATCH_LOW = {2: 48, 4: 32}  # low-resolution side of a training patch
BATCH = 16
FULL_STEPS = {2: 1500, 4: 1500}
QUICK_STEPS = 6


def spec(scale: int) -> ExportSpec:
    return ExportSpec(
        inputs=(TensorSpec("image", "float32", ("batch", 3, "height", "width"), example=pixels),),
        outputs=(TensorSpec("result", "float32", ("batch", 3, f"height_x{scale}", f"width_x{scale}")),),
        opset=17, rtol=1e-3, atol=1e-4, max_batch_size=16,
        # The effect's largest run: 2 tiles at the tile field's maximum (1024) with their halo.
        max_input_elements=tiled_run_elements(3, 1024, upscale.HALO, batch=2),
        output_axes={f"height_x{scale}": ("height", scale), f"width_x{scale}": ("width", scale)},
        example_axes={"height": 24, "width": 40},
    )


def make_batch_fn(photos: Sequence[np.ndarray], scale: int, patch_low: int) -> MakeBatch:
    def make_batch(rng: np.random.Generator, size: int) -> tuple[list[np.ndarray], np.ndarray]:
        high = random_patches(photos, rng, size, patch_low * scale, multiple=scale)
        low = np.stack([downscale(h.transpose(1, 2, 0), scale).transpose(2, 0, 1) for h in high])
        return [low.astype(np.float32)], high

    return make_batch


def _build(ctx: RecipeContext, scale: int) -> TrainedModel:
    ctx.use(*PHOTOS_TRAINING_DATA)
    split = photo_split()
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS[scale]
    model = train_supervised(
        Upscaler(scale), make_batch_fn(split.train, scale, PATCH_LOW[scale]), steps=steps, batch=BATCH,
        seed=ctx.seed, lr=1e-3, hooks=ctx.hooks)
    return TrainedModel(
        module=model,
        spec=spec(scale),
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "degradation": f"bicubic (antialiased, Pillow) downscale by {scale}"},
        hyperparameters={"steps": steps, "batch": BATCH, "patch_low": PATCH_LOW[scale], "scale": scale,
                         "loss": "L1", "optimiser": "Adam 1e-3, cosine"},
        evaluate=lambda session: evaluate_session(session, split, scale),
    )


def build_x2(ctx: RecipeContext) -> TrainedModel:
    return _build(ctx, 2)


def build_x4(ctx: RecipeContext) -> TrainedModel:
    return _build(ctx, 4)

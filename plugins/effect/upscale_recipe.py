"""``museforge export effect.upscale_x2`` / ``_x4``: train the upscalers on packaged photographs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from museforge.export.photo_data import PhotoSplit, photo_split
from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec, tiled_run_elements

from . import upscale
from .baselines import downscale
from .supervised import MakeBatch, random_patches, train_supervised
from .upscale_net import Upscaler
from .upscale_quality import evaluate_upscaler, session_upscaler

PATCH_LOW = {2: 48, 4: 32}  # low-resolution side of a training patch
BATCH = 16
FULL_STEPS = {2: 1500, 4: 1500}
QUICK_STEPS = 6


def spec(scale: int) -> ExportSpec:
    return ExportSpec(
        inputs=(TensorSpec("image", "float32", ("batch", 3, "height", "width")),),
        outputs=(TensorSpec("result", "float32", ("batch", 3, f"height_x{scale}", f"width_x{scale}")),),
        opset=17, rtol=1e-3, atol=1e-4, max_batch_size=16,
        # The effect's largest run: 2 tiles at the tile field's maximum (1024) with their halo.
        max_input_elements=tiled_run_elements(3, 1024, upscale.HALO, batch=2),
        output_axes={f"height_x{scale}": ("height", scale), f"width_x{scale}": ("width", scale)},
    )


def make_batch_fn(photos: Sequence[np.ndarray], scale: int, patch_low: int) -> MakeBatch:
    def make_batch(rng: np.random.Generator, size: int) -> tuple[list[np.ndarray], np.ndarray]:
        high = random_patches(photos, rng, size, patch_low * scale, multiple=scale)
        low = np.stack([downscale(h.transpose(1, 2, 0), scale).transpose(2, 0, 1) for h in high])
        return [low.astype(np.float32)], high

    return make_batch


def evaluate_session(session: ort.InferenceSession, split: PhotoSplit, scale: int) -> dict[str, Any]:
    return evaluate_upscaler(session_upscaler(session), scale, split.held_out, split.held_out_names)


def _build(ctx: RecipeContext, scale: int) -> TrainedModel:
    split = photo_split()
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS[scale]
    model = train_supervised(
        Upscaler(scale), make_batch_fn(split.train, scale, PATCH_LOW[scale]), steps=steps, batch=BATCH,
        seed=ctx.seed, lr=1e-3, progress=ctx.progress, checkpoint=ctx.checkpoints.save)

    def make_inputs(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        return {"image": rng.random((batch, 3, 24, 40), dtype=np.float32)}

    return TrainedModel(
        module=model,
        spec=spec(scale),
        make_inputs=make_inputs,
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

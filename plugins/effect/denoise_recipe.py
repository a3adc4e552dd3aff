"""``museforge export effect.denoise``: train the noise-level-conditioned denoiser on packaged photos.

Also the export spec of a conditioned restorer, which effect.restore's recipe shares.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec, pixels, tiled_run_elements, uniform

from . import denoise
from .denoise_quality import COARSE_BLUR_SIGMAS, evaluate_session
from .photo_data import PHOTOS_TRAINING_DATA, photo_split
from .restoration_net import DEPTH, WIDTH, ConditionedRestorer
from .supervised import MakeBatch, random_patches, train_supervised

PATCH = 64
BATCH = 16
FULL_STEPS = 1200
QUICK_STEPS = 4
# Training noise levels (0-255 scale): a margin around the 5-50 the effect accepts.
SIGMA_TRAIN = (2.0, 55.0)
SIGMA_SERVED = (5.0, 50.0)
SIGMA_SCALE = 50.0  # the network sees sigma / 50 as its level channel
SHARED_GREY_NOISE = 0.5  # share of grey patches given one noise field for all channels


def restorer_spec(condition: str, levels: tuple[float, float], served: tuple[float, float]) -> ExportSpec:
    """image [batch, 3, h, w] + ``condition`` [batch] in ``levels`` -> result [batch, 3, h, w].

    Validation feeds random pictures of even sides and conditions in the ``served`` range.
    """
    return ExportSpec(
        inputs=(TensorSpec("image", "float32", ("batch", 3, "height", "width"), example=pixels),
                TensorSpec(condition, "float32", ("batch",), range=levels, example=uniform(*served))),
        outputs=(TensorSpec("result", "float32", ("batch", 3, "height", "width")),),
        opset=17, rtol=1e-3, atol=1e-4, max_batch_size=16,
        # The effect's largest run: 4 tiles at the tile field's maximum (1024) with their halo.
        max_input_elements=tiled_run_elements(3, 1024, denoise.HALO, denoise.MULTIPLE, batch=4) + 4,
        example_axes={"height": 24, "width": 40},
    )


def make_batch_fn(photos: Sequence[np.ndarray], patch: int) -> MakeBatch:
    def make_batch(rng: np.random.Generator, size: int) -> tuple[list[np.ndarray], np.ndarray]:
        clean = random_patches(photos, rng, size, patch)
        sigma = rng.uniform(*SIGMA_TRAIN, size).astype(np.float32)
        noise = rng.standard_normal(clean.shape, dtype=np.float32)
        # A grey picture served as RGB carries the same noise in all three channels; teach
        # that case too, or the network would read identical channels as clean.
        grey = np.all(clean == clean[:, :1], axis=(1, 2, 3)) & (rng.random(size) < SHARED_GREY_NOISE)
        noise[grey] = noise[grey][:, :1]
        noisy = np.clip(clean + noise * (sigma / 255.0)[:, None, None, None], 0.0, 1.0)
        return [noisy.astype(np.float32), sigma], clean

    return make_batch


def build(ctx: RecipeContext) -> TrainedModel:
    ctx.use(*PHOTOS_TRAINING_DATA)
    split = photo_split()
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    model = train_supervised(
        ConditionedRestorer(0.0, SIGMA_SCALE), make_batch_fn(split.train, PATCH), steps=steps,
        batch=BATCH, seed=ctx.seed, lr=1e-3, hooks=ctx.hooks)
    return TrainedModel(
        module=model,
        spec=restorer_spec("sigma", SIGMA_TRAIN, SIGMA_SERVED),
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "degradation": f"additive white Gaussian noise, sigma uniform in {SIGMA_TRAIN} "
                 "(0-255 scale), clipped to [0, 1]"},
        hyperparameters={"steps": steps, "batch": BATCH, "patch": PATCH, "width": WIDTH, "depth": DEPTH,
                         "sigma_train": list(SIGMA_TRAIN), "loss": "L1", "optimiser": "Adam 1e-3, cosine"},
        evaluate=lambda session: evaluate_session(session, split, (25,), COARSE_BLUR_SIGMAS) if ctx.quick
        else evaluate_session(session, split),
    )

"""``museforge export effect.stylize``: train the multi-style network on packaged photographs."""

from __future__ import annotations

import numpy as np

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec, pixels, tiled_run_elements

from . import stylize
from .photo_data import PHOTOS_TRAINING_DATA, photo_split
from .stylize_net import BLOCKS, NORM_PATCHES, PALETTE_LR_GAIN, WIDTHS, Stylizer, train_stylizer
from .stylize_quality import STYLE_NAMES, STYLES, evaluate_session, style_grams
from .supervised import random_patches

PATCH = 96  # content patch side: holds a few of the extractor's coarsest (45 px) cells
BATCH = 6  # two patches per style per step
FULL_STEPS = 560
QUICK_STEPS = 3
LR = 2e-3  # 5e-3 diverged in trials
STYLE_WEIGHT = 5.0  # on the style-distance ratio; content is 1 - luminance SSIM, weight 1
CONTENT_WEIGHT = 1.5
QUICK_CROP = 128  # quick mode scores centre crops of the held-out photos (seconds, not minutes)

SPEC = ExportSpec(
    inputs=(TensorSpec("image", "float32", ("batch", 3, "height", "width"), example=pixels),
            TensorSpec("style", "int64", ("batch",), range=(0, len(STYLES) - 1))),
    outputs=(TensorSpec("result", "float32", ("batch", 3, "height", "width")),),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=16,
    # The effect's largest run: 2 tiles at the tile field's maximum (1024) with their halo.
    max_input_elements=tiled_run_elements(3, 1024, stylize.HALO, stylize.GRID, batch=2) + 2,
    # 38 x 54: not a multiple of 4, so validation covers the network's own padding.
    example_axes={"height": 38, "width": 54},
)


def build(ctx: RecipeContext) -> TrainedModel:
    if stylize.STYLES != STYLE_NAMES:
        raise RuntimeError("stylize.STYLES (serving) differs from stylize_quality.STYLES")
    ctx.use(*PHOTOS_TRAINING_DATA)
    split = photo_split()
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    model = Stylizer(len(STYLES))

    def make_batch(rng: np.random.Generator, count: int) -> np.ndarray:
        return random_patches(split.train, rng, count, PATCH)

    train_stylizer(model, make_batch, style_grams(), steps=steps, batch=BATCH, seed=ctx.seed, lr=LR,
                   style_weight=STYLE_WEIGHT, content_weight=CONTENT_WEIGHT, hooks=ctx.hooks)
    return TrainedModel(
        module=model,
        spec=SPEC,
        dataset={
            "source": split.source,
            "fingerprint": split.fingerprint,
            "styles": {s.name: {"image": s.source, "crop_top_left_height_width": s.crop,
                                "scale": s.scale} for s in STYLES},
            "note": "the style images are packaged photographs that are also in the training "
                    "content split; figures are on the held-out photographs only",
        },
        hyperparameters={"steps": steps, "batch": BATCH, "patch": PATCH, "lr": LR,
                         "optimiser": "Adam, warm-up + cosine", "palette_lr_gain": PALETTE_LR_GAIN,
                         "norm_patches": NORM_PATCHES, "style_weight": STYLE_WEIGHT,
                         "content_weight": CONTENT_WEIGHT, "widths": list(WIDTHS),
                         "residual_blocks": BLOCKS,
                         "loss": "style_weight * style-distance ratio + content_weight * "
                                 "(1 - luminance SSIM)"},
        evaluate=lambda session: evaluate_session(session, split, QUICK_CROP if ctx.quick else None),
    )

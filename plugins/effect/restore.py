"""``effect.restore``: remove JPEG compression artefacts with a quality-conditioned CNN (no torch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from museforge import Effect, GenerationContext, Media, ModelSource, Picture, Progress, Recipe

from .common import IMAGE_FORMATS, TILE_FIELD, model_runner, network_input, to_media
from .denoise import run_even
from .jpeg_constraint import constrain_to_jpeg

MODELS = Path(__file__).parent / "models"
MODEL = "effect.restore"


class RestoreParams(BaseModel):
    """Parameters of effect.restore."""

    quality: int = Field(20, ge=5, le=50, description=(
        "The JPEG quality (libjpeg / Pillow scale, 1-100) the picture was saved at; lower means "
        "stronger artefacts. The network was trained on qualities 5-50: for a picture saved above "
        "50, use 50. When unknown, a value a little below the true one removes more but smooths more."))
    jpeg_constraint: bool = Field(True, description=(
        "Keep the result consistent with the JPEG: each 8x8 block's luma DCT coefficients are moved "
        "back within half a quantisation step of the decoded ones, where the original's must lie. "
        "Runs only when the picture's coefficients confirm the standard libjpeg / Pillow tables at "
        "`quality` (the result's metadata says whether it ran); false: the network alone."))
    tile: int = TILE_FIELD


def apply(ctx: GenerationContext, params: RestoreParams, inputs: Sequence[Picture],
          seed: int) -> Iterator[Progress | Media]:
    picture = inputs[0]
    image, peak = network_input(picture)
    quality = np.float32(params.quality)
    run = model_runner(ctx, MODEL, extra=lambda n: {"quality": np.full(n, quality, np.float32)})
    result = yield from run_even(run, image, params.tile)
    constraint = "off"
    # On the whole frame, after tiling: the JPEG's block grid starts at the frame's top-left pixel.
    # A scene-linear input was never an 8-bit JPEG, so it has no quantisation intervals.
    if params.jpeg_constraint and not picture.linear:
        result, applied = constrain_to_jpeg(result, image, params.quality)
        constraint = "applied" if applied else "skipped: not a JPEG saved at this quality"
    yield to_media(result, picture, peak, 0,
                   metadata={"quality": str(params.quality), "jpeg_constraint": constraint})


EFFECT = Effect(
    name="effect.restore",
    modality="image",
    parameters=RestoreParams,
    apply=apply,
    formats=IMAGE_FORMATS,
    models=(ModelSource(MODEL, MODELS / "restore"),),
    description="Removes JPEG compression artefacts (blocking, ringing, colour bleeding) with a "
    "quality-conditioned CNN, then keeps the luma within the JPEG's quantisation intervals when the "
    "picture confirms the stated quality.",
)
RECIPES = (
    Recipe(name=MODEL, description="JPEG-quality-conditioned artefact-removal CNN on packaged photographs",
           build="museforge.plugins.effect.restore_recipe:build", models_dir=MODELS / "restore"),
)

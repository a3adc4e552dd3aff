"""``effect.upscale``: x2 / x4 super-resolution with a residual sub-pixel CNN (no torch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from museforge import Effect, GenerationContext, Media, ModelSource, Picture, Progress, Recipe, Tiling

from .common import IMAGE_FORMATS, TILE_FIELD, apply_tiled, model_runner, network_input, to_media

MODELS = Path(__file__).parent / "models"
MODEL = {2: "effect.upscale_x2", 4: "effect.upscale_x4"}
HALO = 12  # >= the network's receptive radius (upscale_net.RECEPTIVE_RADIUS): exact tiles
MAX_OUTPUT_PIXELS = 8192 * 8192


class UpscaleParams(BaseModel):
    """Parameters of effect.upscale."""

    scale: Literal[2, 4] = Field(2, description="Upscaling factor.")
    tile: int = TILE_FIELD


def check(params: UpscaleParams, inputs: Sequence[Picture]) -> list[tuple[str, str]]:
    pixels = inputs[0].width * inputs[0].height * params.scale**2
    if pixels > MAX_OUTPUT_PIXELS:
        return [("parameters.scale", f"the result would have {pixels:,} pixels; at most "
                 f"{MAX_OUTPUT_PIXELS:,} (e.g. 8192 x 8192) per frame")]
    return []


def output_size(params: UpscaleParams, inputs: Sequence[Picture]) -> tuple[int, int]:
    return inputs[0].width * params.scale, inputs[0].height * params.scale


def apply(ctx: GenerationContext, params: UpscaleParams, inputs: Sequence[Picture],
          seed: int) -> Iterator[Progress | Media]:
    picture = inputs[0]
    image, peak = network_input(picture)
    tiling = Tiling(tile=params.tile, halo=HALO, blend=0, scale=params.scale, batch=2)
    result = yield from apply_tiled(model_runner(ctx, MODEL[params.scale]), image, tiling)
    yield to_media(result, picture, peak, 0, metadata={"scale": str(params.scale)})


EFFECT = Effect(
    name="effect.upscale",
    modality="image",
    parameters=UpscaleParams,
    apply=apply,
    formats=IMAGE_FORMATS,
    models=tuple(ModelSource(MODEL[s], MODELS / f"upscale_x{s}") for s in (2, 4)),
    description="Super-resolution x2 or x4: a residual CNN predicts the detail bicubic misses.",
    check=check,
    output_size=output_size,
)
RECIPES = tuple(
    Recipe(name=MODEL[s], description=f"Residual sub-pixel CNN, x{s}, on packaged photographs",
           build=f"museforge.plugins.effect.upscale_recipe:build_x{s}",
           models_dir=MODELS / f"upscale_x{s}")
    for s in (2, 4)
)

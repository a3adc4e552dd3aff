"""``effect.stylize``: feed-forward style transfer, one network for every style (no torch).

The network has no per-instance statistics (conditional affine instead of conditional
instance norm, see ``stylize_net``), so each output pixel depends only on input pixels
within ``stylize_net.RECEPTIVE_RADIUS``. Tiles read a halo at least that wide, and
their corners sit on the network's 4-pixel grid (the frame is padded to a multiple of
4), so a tiled result equals the whole-frame result: no seams, any tile size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from museforge import Effect, GenerationContext, Media, ModelSource, Picture, Progress, Recipe, Tiling

from .common import IMAGE_FORMATS, TILE_FIELD, apply_tiled, model_runner, network_input, to_media

MODELS = Path(__file__).parent / "models"
MODEL = "effect.stylize"
# In STYLES order of stylize_quality (the network's style index); a test checks they agree.
STYLES = ("ihc", "retina", "gravel")
GRID = 4  # the network downsamples twice by 2: tiles must start on this grid to match
HALO = 36  # >= stylize_net.RECEPTIVE_RADIUS, rounded up to GRID: tiles are exact
BLEND = 8  # a short cross-fade; tiles already agree, this only absorbs float rounding

StyleName = Literal["ihc", "retina", "gravel"]


class StylizeParams(BaseModel):
    """Parameters of effect.stylize."""

    style: StyleName = Field("ihc", description=(
        "ihc: brown-stained cells on blue (immunohistochemistry slide); retina: orange-red "
        "fundus with dark vessels; gravel: grey pebble mosaic."))
    strength: float = Field(1.0, ge=0.0, le=1.0, description="Blend with the input: 0 leaves "
                            "it unchanged, 1 is the full style.")
    tile: int = TILE_FIELD


def apply(ctx: GenerationContext, params: StylizeParams, inputs: Sequence[Picture],
          seed: int) -> Iterator[Progress | Media]:
    picture = inputs[0]
    image, peak = network_input(picture, exposure="diffuse")
    _, height, width = image.shape
    # Pad (edge repeated) to the grid so every tile corner lands on it; cropped after.
    padded = np.pad(image, ((0, 0), (0, -height % GRID), (0, -width % GRID)), mode="edge")
    tile = params.tile // GRID * GRID
    tiling = Tiling(tile=tile, halo=HALO, blend=BLEND, multiple=GRID, batch=2)
    index = STYLES.index(params.style)

    def extra(n: int) -> Mapping[str, np.ndarray]:
        return {"style": np.full(n, index, np.int64)}

    result = yield from apply_tiled(model_runner(ctx, MODEL, extra=extra), padded, tiling)
    result = result[:, :height, :width]
    if params.strength < 1.0:
        result = params.strength * result + (1.0 - params.strength) * image
    yield to_media(result, picture, peak, 0,
                   metadata={"style": params.style, "strength": f"{params.strength:g}"})


EFFECT = Effect(
    name="effect.stylize",
    modality="image",
    parameters=StylizeParams,
    apply=apply,
    formats=IMAGE_FORMATS,
    models=(ModelSource(MODEL, MODELS / "stylize"),),
    description="Style transfer in one pass: repaints a photograph with the colours and "
                "texture of one of three packaged images, keeping its structure.",
)
RECIPES = (
    Recipe(name=MODEL, description="Feed-forward style transfer, 3 styles, conditional affine CNN",
           build="museforge.plugins.effect.stylize_recipe:build", models_dir=MODELS / "stylize"),
)

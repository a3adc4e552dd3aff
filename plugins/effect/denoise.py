"""``effect.denoise``: remove Gaussian noise of a known level with a conditioned CNN (no torch)."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from museforge import (
    Effect,
    GenerationContext,
    Media,
    ModelSource,
    Picture,
    Progress,
    Recipe,
    RunTiles,
    Tiling,
    mirror_index,
)

from .common import IMAGE_FORMATS, TILE_FIELD, apply_tiled, model_runner, network_input, to_media

MODELS = Path(__file__).parent / "models"
MODEL = "effect.denoise"
# >= the network's receptive radius (restoration_net.RECEPTIVE_RADIUS = 21), and even so
# every tile starts on the network's 2x2 fold grid: tiles then match the whole frame exactly.
HALO = 22
MULTIPLE = 2  # restoration_net.MULTIPLE


class DenoiseParams(BaseModel):
    """Parameters of effect.denoise."""

    sigma: float = Field(25.0, ge=5.0, le=50.0, description=(
        "Standard deviation of the noise to remove, on the 0-255 scale of 8-bit pixel values "
        "(5: faint grain, 25: strong, 50: very heavy). Too low leaves noise; too high smooths detail."))
    tile: int = TILE_FIELD


def run_even(run: RunTiles, image: np.ndarray, tile: int) -> Generator[Progress, None, np.ndarray]:
    """Run a 2x2-folding network over ``image`` ([3, H, W]) in tiles; returns [3, H, W].

    The frame is mirrored (bottom, right) to even sides and the tile rounded down to
    even; with the even halo, every tile then starts on an even pixel, so the fold pairs
    the same pixels as in a whole-frame run (and, for a JPEG, as its chroma subsampling).
    """
    _, height, width = image.shape
    padded = np.take(image, mirror_index(np.arange(height + height % 2), height), axis=1)
    padded = np.take(padded, mirror_index(np.arange(width + width % 2), width), axis=2)
    tiling = Tiling(tile=tile - tile % MULTIPLE, halo=HALO, blend=0, multiple=MULTIPLE, batch=4)
    result = yield from apply_tiled(run, padded, tiling)
    return result[:, :height, :width]


def apply(ctx: GenerationContext, params: DenoiseParams, inputs: Sequence[Picture],
          seed: int) -> Iterator[Progress | Media]:
    picture = inputs[0]
    image, peak = network_input(picture)
    sigma = np.float32(params.sigma)
    run = model_runner(ctx, MODEL, extra=lambda n: {"sigma": np.full(n, sigma, np.float32)})
    result = yield from run_even(run, image, params.tile)
    yield to_media(result, picture, peak, 0, metadata={"sigma": f"{params.sigma:g}"})


EFFECT = Effect(
    name="effect.denoise",
    modality="image",
    parameters=DenoiseParams,
    apply=apply,
    formats=IMAGE_FORMATS,
    models=(ModelSource(MODEL, MODELS / "denoise"),),
    description="Removes Gaussian noise of a given level (sigma 5-50 on the 0-255 scale) with a "
    "noise-level-conditioned CNN.",
)
RECIPES = (
    Recipe(name=MODEL, description="Noise-level-conditioned denoising CNN (FFDNet-style) on packaged "
           "photographs", build="museforge.plugins.effect.denoise_recipe:build",
           models_dir=MODELS / "denoise"),
)

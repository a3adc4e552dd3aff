"""``image.texture``: seamless game textures of any size from a spatial GAN (no torch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationInfo, model_validator

from museforge import (
    GenerationContext,
    Generator,
    LimitExceeded,
    Media,
    ModelSource,
    OutputEstimate,
    Progress,
    Variations,
    latents,
    request_count,
)

MODEL = "image.texture"
MODELS_DIR = Path(__file__).parent / "models" / "texture"
FAMILIES = ("brick", "grass", "gravel")  # must equal texture_data.FAMILIES (the recipe checks)
SCALE = 16  # output pixels per noise cell; must equal texture_gan.SCALE
NOISE_CHANNELS = 32  # must equal texture_gan.NOISE_CHANNELS
MARGIN = 4  # noise cells added around a non-tileable request and cropped away
MAX_PIXELS = 2048 * 2048 * 4  # width x height x count x frames per request
Family = Literal["brick", "grass", "gravel"]
SIZE_FIELDS = ("parameters.width", "parameters.height", "parameters.frames", "count")


class TextureParams(Variations):
    """Parameters of image.texture.

    At most 16,777,216 pixels per request: width x height x count x frames (frames counts with
    interpolate_to).
    """

    family: Family = Field("brick", description="Texture family.")
    width: int = Field(512, ge=64, le=2048, multiple_of=SCALE,
                       description=f"Width in pixels, 64-2048, a multiple of {SCALE}.")
    height: int = Field(512, ge=64, le=2048, multiple_of=SCALE,
                        description=f"Height in pixels, 64-2048, a multiple of {SCALE}.")
    tileable: bool = Field(True, description="Wrap seamlessly at the edges (for tiling in a "
                           "game engine).")


    @model_validator(mode="after")
    def _bounded_pixels(self, info: ValidationInfo) -> TextureParams:
        pixels = self.width * self.height * request_count(info) * self.images_per_item()
        if pixels > MAX_PIXELS:
            raise LimitExceeded(f"width x height x count x frames = {pixels:,} pixels exceeds {MAX_PIXELS:,} "
                                f"per request ({', '.join(SIZE_FIELDS)})", SIZE_FIELDS)
        return self


assert f"At most {MAX_PIXELS:,} pixels" in (TextureParams.__doc__ or "")  # the schema states the bound


def estimate(params: TextureParams, count: int) -> OutputEstimate:
    """Float32 grey pixels of every texture."""
    return OutputEstimate(params.width * params.height * count * params.images_per_item() * 4, SIZE_FIELDS)


def noise_shape(params: TextureParams) -> tuple[int, int, int]:
    """The noise field for a request: a torus when tileable, with a margin to crop otherwise.

    Every conv in the network pads circularly, so a field of h x w cells gives an image of
    exactly (h*SCALE) x (w*SCALE) that wraps around; cropping a margin off a larger field
    breaks that periodicity for non-tileable output.
    """
    extra = 0 if params.tileable else 2 * MARGIN
    return (NOISE_CHANNELS, params.height // SCALE + extra, params.width // SCALE + extra)


def generate(
    ctx: GenerationContext, params: TextureParams, seed: int, count: int
) -> Iterator[Progress | Media]:
    family = np.array([FAMILIES.index(params.family)], dtype=np.int64)
    total = count * params.images_per_item()
    crop = 0 if params.tileable else MARGIN * SCALE
    yield Progress(0, total, "sampling")
    # One image per model call: a 2048^2 texture is big enough to fill the cores alone.
    for done, (index, noise) in enumerate(latents(noise_shape(params), seed, count, params), 1):
        ctx.check_cancelled()
        image = ctx.infer(MODEL, {"noise": noise[None], "family": family})["image"][0, 0]
        if crop:
            image = image[crop:crop + params.height, crop:crop + params.width]
        yield Media("image", np.clip(image, 0.0, 1.0), index, {"family": params.family})
        yield Progress(done, total, "sampling")


TEXTURE = Generator(
    name="image.texture",
    modality="image",
    parameters=TextureParams,
    generate=generate,
    formats=("png", "png16", "jpeg", "webp", "exr"),
    models=(ModelSource(MODEL, MODELS_DIR),),
    description="Seamless grayscale game textures (brick, grass, gravel) of any size from a "
    "fully convolutional GAN trained on scikit-image's texture photographs.",
    estimate=estimate,
    latent_shape=noise_shape,
)

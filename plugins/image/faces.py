"""``image.faces``: grayscale faces from a DCGAN trained on Labeled Faces in the Wild (no torch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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

from .resize import upscale

MODEL = "image.faces"
MODELS_DIR = Path(__file__).parent / "models" / "faces"
LATENT_DIM = 128  # must equal faces_gan.LATENT_DIM (the recipe checks)
NATIVE_SIZE = 32
CHUNK = 32
MAX_IMAGES = 512  # count x frames per request


class FacesParams(Variations):
    """Parameters of image.faces.

    At most 512 images per request: count x frames (frames counts with interpolate_to).
    """

    size: int = Field(
        64, ge=NATIVE_SIZE, le=512,
        description="Output width and height in pixels; the model draws 32x32 and larger sizes "
        "are upsampled with a Lanczos filter.",
    )

    @model_validator(mode="after")
    def _bounded_images(self, info: ValidationInfo) -> FacesParams:
        images = request_count(info) * self.images_per_item()
        if images > MAX_IMAGES:
            raise LimitExceeded(f"count x frames = {images} exceeds {MAX_IMAGES} (parameters.frames, count)",
                                ("parameters.frames", "count"))
        return self


assert f"At most {MAX_IMAGES} images" in (FacesParams.__doc__ or "")  # the schema states the bound


def estimate(params: FacesParams, count: int) -> OutputEstimate:
    """Float32 grey pixels of every image."""
    return OutputEstimate(count * params.images_per_item() * params.size**2 * 4,
                          ("parameters.size", "parameters.frames", "count"))


def generate(
    ctx: GenerationContext, params: FacesParams, seed: int, count: int
) -> Iterator[Progress | Media]:
    items = list(latents((LATENT_DIM,), seed, count, params))
    total = len(items)
    yield Progress(0, total, "sampling")
    for start in range(0, total, CHUNK):
        chunk = items[start:start + CHUNK]
        z = np.stack([latent for _, latent in chunk])
        images = ctx.infer(MODEL, {"z": z})["image"]
        for (index, _), image in zip(chunk, images, strict=True):
            yield Media("image", upscale(np.clip(image[0], 0.0, 1.0), params.size), index)
        yield Progress(start + len(chunk), total, "sampling")


FACES = Generator(
    name="image.faces",
    modality="image",
    parameters=FacesParams,
    generate=generate,
    formats=("png", "png16", "jpeg", "webp", "exr"),
    models=(ModelSource(MODEL, MODELS_DIR),),
    description="Grayscale faces from a DCGAN trained on scikit-image's Labeled Faces in the "
    "Wild subset; morph sequences between two seeds with interpolate_to and frames.",
    estimate=estimate,
    latent_shape=lambda params: (LATENT_DIM,),
)

"""``image.digits``: handwritten digits from a class-conditional GAN (serving side, no torch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from museforge import (
    GenerationContext,
    Generator,
    LimitExceeded,
    Media,
    ModelSource,
    OrRandom,
    OutputEstimate,
    Progress,
    request_count,
)

from .resize import upscale

MODEL = "image.digits"
MODELS_DIR = Path(__file__).parent / "models" / "digits"
NOISE_DIM = 100
NATIVE_SIZE = 28
CHUNK = 32  # images per model call: bounded memory and regular progress for large counts
MAX_PIXELS = 64 * 512 * 512  # size x size x count per request
SIZE_FIELDS = ("parameters.size", "count")


class DigitsParams(BaseModel):
    """Parameters of image.digits.

    At most 16,777,216 pixels per request: size x size x count.
    """

    model_config = ConfigDict(extra="forbid")

    digit: Annotated[int | None, OrRandom()] = Field(
        None, ge=0, le=9,
        description="Which digit to draw (0-9); omit or 'random' for a random digit per image.",
    )
    size: int = Field(
        NATIVE_SIZE, ge=NATIVE_SIZE, le=512,
        description="Output width and height in pixels (the model draws 28x28; larger is "
        "upsampled with a Lanczos filter).",
    )

    @model_validator(mode="after")
    def _bounded_pixels(self, info: ValidationInfo) -> DigitsParams:
        pixels = self.size**2 * request_count(info)
        if pixels > MAX_PIXELS:
            raise LimitExceeded(f"size x size x count = {pixels:,} pixels exceeds {MAX_PIXELS:,} per request "
                                "(parameters.size, count)", SIZE_FIELDS)
        return self


assert f"At most {MAX_PIXELS:,} pixels" in (DigitsParams.__doc__ or "")  # the schema states the bound


def estimate(params: DigitsParams, count: int) -> OutputEstimate:
    """Float32 grey pixels of every image."""
    return OutputEstimate(params.size**2 * count * 4, SIZE_FIELDS)


def sample_inputs(seed: int, count: int, digit: int | None) -> dict[str, np.ndarray]:
    """The model inputs for a request: all randomness comes from the seed."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((count, NOISE_DIM)).astype(np.float32)
    if digit is None:
        labels = rng.integers(0, 10, size=count, dtype=np.int64)
    else:
        labels = np.full(count, digit, dtype=np.int64)
    return {"z": z, "label": labels}


def generate(
    ctx: GenerationContext, params: DigitsParams, seed: int, count: int
) -> Iterator[Progress | Media]:
    inputs = sample_inputs(seed, count, params.digit)
    yield Progress(0, count, "sampling")
    for start in range(0, count, CHUNK):
        stop = min(start + CHUNK, count)
        batch = {k: v[start:stop] for k, v in inputs.items()}
        images = ctx.infer(MODEL, batch)["image"]
        for offset, image in enumerate(images):
            pixels = upscale(np.clip(image[0], 0.0, 1.0), params.size)
            label = int(batch["label"][offset])
            yield Media("image", pixels, start + offset, {"digit": str(label)})
        yield Progress(stop, count, "sampling")


DIGITS = Generator(
    name="image.digits",
    modality="image",
    parameters=DigitsParams,
    generate=generate,
    formats=("png", "png16", "jpeg", "webp", "exr"),
    models=(ModelSource(MODEL, MODELS_DIR),),
    description="Handwritten digits (28x28 grayscale) from a class-conditional GAN "
    "trained on 4,000 real MNIST digits.",
    estimate=estimate,
)

"""``image.tiles``: seamless 32x32 pixel-art floor and wall tiles, alone or as sheets (no torch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from PIL import Image
from pydantic import Field, ValidationInfo, model_validator

from museforge import (
    GenerationContext,
    Generator,
    LimitExceeded,
    Media,
    ModelSource,
    OrRandom,
    OutputEstimate,
    Progress,
    Variations,
    item_choices,
    latents,
    request_count,
)

from .latent_batches import batches

MODEL = "image.tiles"
MODELS_DIR = Path(__file__).parent / "models" / "tiles"
TILE = 32
KINDS = ("floor", "wall")  # must equal tiles_data.KINDS (the recipe checks)
LOOKS = ("stone", "teal", "ochre", "violet", "green", "red")  # must equal tiles_data.LOOKS
CELLS = 4  # noise cells along a tile's side; must equal tiles_gan.CELLS
NOISE_CHANNELS = 32  # must equal tiles_gan.NOISE_CHANNELS
DEFAULT_PALETTE = 12  # about what a real Crawl tile uses (median 7 on floors, 13 on walls)
MAX_PIXELS = 2048 * 2048 * 4  # width x height x count x frames per request, after pixel_scale
MAX_TILES_PER_CALL = 64  # tiles per model call: bounded memory, regular progress
Kind = Literal["floor", "wall"]
Look = Literal["stone", "teal", "ochre", "violet", "green", "red"]
SIZE_FIELDS = ("parameters.columns", "parameters.rows", "parameters.pixel_scale", "parameters.frames",
               "count")


class TilesParams(Variations):
    """Parameters of image.tiles.

    At most 16,777,216 pixels per request: (32 x columns x pixel_scale) x (32 x rows x
    pixel_scale) x count x frames (frames counts with interpolate_to).
    """

    kind: Kind = Field("floor", description="Floor or wall tiles.")
    look: Annotated[Look | None, OrRandom()] = Field(
        None, description="Appearance cluster found in the training tiles: stone (greys), teal, ochre, "
        "violet, green or red. Omit or 'random' for a random look per image.",
    )
    palette: int | None = Field(
        DEFAULT_PALETTE, ge=2, le=256,
        description="Colours per image (median-cut, no dithering) for crisp pixel art; null keeps the "
        "model's full colour.",
    )
    columns: int = Field(1, ge=1, le=16, description="Tiles across: a sheet of columns x rows tiles that "
                         "join seamlessly with each other and wrap around as a whole.")
    rows: int = Field(1, ge=1, le=16, description="Tiles down (see columns).")
    pixel_scale: int = Field(1, ge=1, le=16, description="Enlarge every pixel to a pixel_scale x "
                             "pixel_scale block (nearest neighbour, so edges stay hard).")

    @model_validator(mode="after")
    def _bounded_pixels(self, info: ValidationInfo) -> TilesParams:
        pixels = self.pixels_per_image() * request_count(info) * self.images_per_item()
        if pixels > MAX_PIXELS:
            raise LimitExceeded(f"width x height x count x frames = {pixels:,} pixels exceeds {MAX_PIXELS:,} "
                                f"per request ({', '.join(SIZE_FIELDS)})", SIZE_FIELDS)
        return self

    def pixels_per_image(self) -> int:
        return self.columns * self.rows * (TILE * self.pixel_scale) ** 2


assert f"At most {MAX_PIXELS:,} pixels" in (TilesParams.__doc__ or "")  # the schema states the bound


def estimate(params: TilesParams, count: int) -> OutputEstimate:
    """Float32 RGB pixels of every image."""
    return OutputEstimate(params.pixels_per_image() * count * params.images_per_item() * 3 * 4, SIZE_FIELDS)


def noise_shape(rows: int, columns: int) -> tuple[int, int, int]:
    return (NOISE_CHANNELS, rows * CELLS, columns * CELLS)


def looks_for(seed: int, count: int, look: str | None, variations: Variations | None = None) -> np.ndarray:
    """The look index of every item: the one asked for, or drawn (museforge.item_choices)."""
    if look is not None:
        return np.full(count, LOOKS.index(look), dtype=np.int64)
    return item_choices(seed, count, variations or Variations(), len(LOOKS))


def quantise(image: np.ndarray, colours: int | None) -> np.ndarray:
    """Float RGB (H, W, 3) in [0, 1] -> float32 RGB on at most ``colours`` colours (None: 8-bit levels).

    Median cut without dithering: dithering would sprinkle the noise pixel art avoids.
    """
    pixels = np.asarray(np.rint(np.clip(image, 0.0, 1.0) * 255.0), dtype=np.uint8)
    if colours is not None:
        reduced = Image.fromarray(pixels, "RGB").quantize(
            colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        pixels = np.asarray(reduced.convert("RGB"))
    return pixels.astype(np.float32) / np.float32(255.0)


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Every pixel as a factor x factor block (nearest neighbour)."""
    return image if factor == 1 else np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def generate(
    ctx: GenerationContext, params: TilesParams, seed: int, count: int
) -> Iterator[Progress | Media]:
    kind = KINDS.index(params.kind)
    looks = looks_for(seed, count, params.look, params)
    frames = params.images_per_item()
    total = count * frames
    chunk = max(1, MAX_TILES_PER_CALL // (params.rows * params.columns))
    yield Progress(0, total, "sampling")
    draws = latents(noise_shape(params.rows, params.columns), seed, count, params)
    for indices, noise in batches(draws, chunk):
        ctx.check_cancelled()
        item_looks = looks[indices // frames]
        images = ctx.infer(MODEL, {"noise": noise, "kind": np.full(len(indices), kind, dtype=np.int64),
                                   "look": item_looks})["image"]
        for i, image, look in zip(indices, images, item_looks, strict=True):
            pixels = enlarge(quantise(np.transpose(image, (1, 2, 0)), params.palette), params.pixel_scale)
            yield Media("image", pixels, int(i), {"kind": params.kind, "look": LOOKS[int(look)]})
        yield Progress(int(indices[-1]) + 1, total, "sampling")


TILES = Generator(
    name="image.tiles",
    modality="image",
    parameters=TilesParams,
    generate=generate,
    formats=("png", "png16", "jpeg", "webp", "exr"),
    models=(ModelSource(MODEL, MODELS_DIR),),
    description="Seamless 32x32 pixel-art floor and wall tiles (and sheets of them that join and wrap) "
    "in six looks, from a GAN trained on Dungeon Crawl Stone Soup's tiles.",
    estimate=estimate,
    latent_shape=lambda params: noise_shape(params.rows, params.columns),
)

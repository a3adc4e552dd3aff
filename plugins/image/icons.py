"""``image.icons``: 64x64 RGBA emoji-style icons by category, with morphs between seeds (no torch)."""

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
    defer_import,
    item_choices,
    latents,
    request_count,
)

from .latent_batches import batches

defer_import("scipy.ndimage")  # imported where used, after start-up (see defer_import)

MODEL = "image.icons"
MODELS_DIR = Path(__file__).parent / "models" / "icons"
ICON = 64
LATENT_DIM = 128  # must equal icons_gan.LATENT_DIM
# Must equal icons_data.CATEGORIES (the recipe checks): emoji.json's categories, shortened.
CATEGORIES = ("smileys", "people", "animals", "food", "travel", "activities", "objects", "symbols", "flags")
Category = Literal["smileys", "people", "animals", "food", "travel", "activities", "objects", "symbols",
                   "flags"]
MAX_PIXELS = 2048 * 2048 * 4  # size x size x count x frames per request
CHUNK = 32  # icons per model call
# Alpha within this of 0 or 1 is snapped to it (the rest stretched to fill 0..1): the GAN leaves
# a faint haze around the drawing and pinholes in it that a real emoji's alpha does not have;
# the one-pixel anti-aliased rim lies well inside the band and stays.
ALPHA_SNAP = 0.02
RESIZE_HAZE = 0.04  # an enlarged icon's Lanczos ringing reaches ~8/255 past the shape
SIZE_FIELDS = ("parameters.size", "parameters.frames", "count")


class IconsParams(Variations):
    """Parameters of image.icons.

    At most 16,777,216 pixels per request: size x size x count x frames (frames counts with
    interpolate_to).
    """

    category: Annotated[Category | None, OrRandom()] = Field(
        None, description="Emoji category: smileys, people, animals, food, travel, activities, objects, "
        "symbols or flags. Omit or 'random' for a random category per icon.",
    )
    clean_alpha: bool = Field(True, description="Snap alpha within 2% of transparent or opaque to it, "
                              "so the ground is clear and the drawing solid; false keeps the model's alpha. "
                              "Either way, colour under alpha 0 is that of the nearest visible pixel.")
    size: int = Field(ICON, ge=ICON, le=512, description="Width and height in pixels (the model draws 64x64; "
                      "larger is resampled with a Lanczos filter on premultiplied colour, so edges keep "
                      "no dark fringe).")

    @model_validator(mode="after")
    def _bounded_pixels(self, info: ValidationInfo) -> IconsParams:
        pixels = self.size**2 * request_count(info) * self.images_per_item()
        if pixels > MAX_PIXELS:
            raise LimitExceeded(f"size x size x count x frames = {pixels:,} pixels exceeds {MAX_PIXELS:,} "
                                f"per request ({', '.join(SIZE_FIELDS)})", SIZE_FIELDS)
        return self


assert f"At most {MAX_PIXELS:,} pixels" in (IconsParams.__doc__ or "")  # the schema states the bound


def estimate(params: IconsParams, count: int) -> OutputEstimate:
    """Float32 RGBA pixels of every icon."""
    return OutputEstimate(params.size**2 * count * params.images_per_item() * 4 * 4, SIZE_FIELDS)


def categories_for(seed: int, count: int, category: str | None,
                   variations: Variations | None = None) -> np.ndarray:
    """The category index of every item: the one asked for, or drawn (museforge.item_choices)."""
    if category is not None:
        return np.full(count, CATEGORIES.index(category), dtype=np.int64)
    return item_choices(seed, count, variations or Variations(), len(CATEGORIES))


def snap_alpha(rgba: np.ndarray, margin: float = ALPHA_SNAP, stretch: bool = True) -> np.ndarray:
    """Straight RGBA (..., 4) with alpha below ``margin`` made 0, above 1 - ``margin`` made 1, the rest
    stretched linearly between (or, without ``stretch``, left as it is: an enlarged icon's rims are
    already what the snap before the resize made them); colour where alpha became 0 is zeroed
    (served icons then take it from the nearest visible pixel: bleed_colour)."""
    alpha = rgba[..., 3]
    if stretch:
        alpha = np.clip((alpha - margin) / (1.0 - 2.0 * margin), 0.0, 1.0)
    else:
        alpha = np.where(alpha < margin, 0.0, np.where(alpha > 1.0 - margin, 1.0, alpha))
    colour = np.where(alpha[..., None] > 0, rgba[..., :3], 0.0)
    return np.concatenate([colour, alpha[..., None]], axis=-1).astype(np.float32)


def resize_rgba(rgba: np.ndarray, size: int) -> np.ndarray:
    """Straight RGBA float (H, W, 4) resized on premultiplied colour, then un-premultiplied."""
    if rgba.shape[0] == size:
        return rgba
    alpha = rgba[..., 3]
    channels = [rgba[..., c] * alpha for c in range(3)] + [alpha]
    resized = [np.asarray(Image.fromarray(np.asarray(ch, np.float32), mode="F").resize(
        (size, size), Image.Resampling.LANCZOS)) for ch in channels]
    new_alpha = np.clip(resized[3], 0.0, 1.0)
    colour = [np.clip(ch / np.maximum(new_alpha, 1e-6), 0.0, 1.0) for ch in resized[:3]]
    return np.stack([*(np.where(new_alpha > 0, ch, 0.0) for ch in colour), new_alpha], axis=-1)


def bleed_colour(rgba: np.ndarray) -> np.ndarray:
    """Straight RGBA (H, W, 4) with the colour under alpha 0 taken from the nearest pixel whose
    alpha is above 0 (Euclidean; ties broken the same way every time). A PNG is straight alpha:
    an engine that filters or mipmaps it blends hidden colour into the rim, so black there darkens
    it. Alpha and visible colour are untouched, and so is premultiplied colour (EXR)."""
    from scipy import ndimage

    hidden = rgba[..., 3] <= 0
    if not hidden.any() or hidden.all():
        return rgba
    rows, cols = ndimage.distance_transform_edt(hidden, return_distances=False, return_indices=True)
    out = rgba.copy()
    out[hidden, :3] = rgba[rows[hidden], cols[hidden], :3]
    return out


def generate(
    ctx: GenerationContext, params: IconsParams, seed: int, count: int
) -> Iterator[Progress | Media]:
    categories = categories_for(seed, count, params.category, params)
    frames = params.images_per_item()
    total = count * frames
    yield Progress(0, total, "sampling")
    for indices, z in batches(latents((LATENT_DIM,), seed, count, params), CHUNK):
        ctx.check_cancelled()
        wanted = categories[indices // frames]
        images = ctx.infer(MODEL, {"z": z, "category": wanted})["image"]
        for i, image, category in zip(indices, images, wanted, strict=True):
            rgba = np.clip(np.transpose(image, (1, 2, 0)), 0.0, 1.0)
            if params.clean_alpha:
                rgba = snap_alpha(rgba)
            name = CATEGORIES[int(category)]
            sized = resize_rgba(rgba, params.size)
            if params.clean_alpha and sized is not rgba:  # Lanczos rings: a faint haze around the shape
                sized = snap_alpha(sized, RESIZE_HAZE, stretch=False)
            yield Media("image", bleed_colour(sized), int(i), {"category": name})
        yield Progress(int(indices[-1]) + 1, total, "sampling")


ICONS = Generator(
    name="image.icons",
    modality="image",
    parameters=IconsParams,
    generate=generate,
    formats=("png", "png16", "webp", "exr"),
    models=(ModelSource(MODEL, MODELS_DIR),),
    description="Emoji-style 64x64 RGBA icons in nine categories (smileys, people, animals, food, travel, "
    "activities, objects, symbols, flags) from a GAN trained on Google's Noto Emoji.",
    estimate=estimate,
    latent_shape=lambda params: (LATENT_DIM,),
)

"""What every image effect does around its network: colour in, tiles, colour and alpha out.

Networks are trained on sRGB-encoded photographs in [0, 1], three channels. A grey
input is repeated to RGB and averaged back; a scene-linear (OpenEXR) input is scaled
by its peak and sRGB-encoded for the network, then decoded and scaled back, and what lies
beyond the peak (or below 0) is added back, so HDR highlights survive whole; alpha never
enters a network and is resized to the result.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping

import numpy as np
from PIL import Image
from pydantic import Field

from museforge import (
    IMAGE_ENCODERS,
    GenerationContext,
    Media,
    Picture,
    Progress,
    RunTiles,
    Tiling,
    linear_to_srgb,
    run_tiled,
    srgb_to_linear,
)

# Every effect takes these; tile is the memory/speed knob for large frames.
TILE_FIELD = Field(256, ge=64, le=1024, description="Tile side in pixels: large frames are "
                   "processed in overlapping tiles of this size (memory grows with its square).")
# The core's PNG, then the core's other image encoders (museforge.IMAGE_ENCODERS, which the
# image plugin registers): png, png16, jpeg, webp, exr.
IMAGE_FORMATS = ("png", *(encoder.name for encoder in IMAGE_ENCODERS))


MIDDLE_GREY = 0.18  # scene-linear grey card: where a plate's median sits when exposed as shot


def network_input(picture: Picture, exposure: str = "peak") -> tuple[np.ndarray, float]:
    """[3, H, W] float32 in the network's space, and the peak a linear input was scaled by.

    ``exposure`` says how a linear input is scaled: ``peak`` by its 99.9th percentile
    (``linear_peak``), so that all but its brightest specks go through the network (for effects
    whose output keeps its input's brightness: denoise, upscale, restore); ``diffuse`` as a viewer
    shows it (diffuse white at 1.0), darkened only so its median is no brighter than middle
    grey (for effects that paint their own brightness, as stylize does: scaled by a bright
    window's peak, the rest of the plate went in nearly black and came out its style's
    brightness times the peak). What lies beyond the peak goes around the network either way.
    """
    colour = picture.colour
    peak = 1.0
    if picture.linear and colour.size:
        if exposure == "diffuse":
            peak = max(float(np.median(colour.mean(axis=2))) / MIDDLE_GREY, 1.0)
        else:
            peak = linear_peak(colour)
    if picture.linear:
        colour = linear_to_srgb(np.clip(colour / peak, 0.0, None))
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    return np.ascontiguousarray(np.clip(colour, 0.0, 1.0).transpose(2, 0, 1)), peak


def linear_peak(values: np.ndarray) -> float:
    """The 99.9th percentile of scene-linear values, which the network's 1.0 stands for.

    Dim plates are brought up too: held at 1.0 or more, a plate shot 8 stops under (values
    near 0.004) reached the network as the bottom twentieth of its range, where denoise and
    restore clipped 60% of it to black. A plate with nothing above 0 keeps 1.0.
    """
    found = float(np.percentile(values, 99.9)) if values.size else 0.0
    return found if found > 0.0 else 1.0


def beyond_peak(picture: Picture, peak: float) -> np.ndarray | None:
    """What a linear picture holds outside [0, peak] (highlights above the peak, negative
    out-of-gamut values), which the network's [0, 1] cannot carry: added back to its result, so
    a sun glint or a specular keeps its value (None: nothing there)."""
    if not picture.linear:
        return None
    outside = picture.colour - np.clip(picture.colour, 0.0, np.float32(peak))
    return outside.astype(np.float32) if np.any(outside) else None


def resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    if plane.shape == (height, width):
        return plane
    image = Image.fromarray(np.asarray(plane, np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), np.float32)


def to_media(result: np.ndarray, picture: Picture, peak: float, index: int,
             alpha: np.ndarray | None = None, metadata: Mapping[str, str] | None = None,
             outside: np.ndarray | bool = True) -> Media:
    """Network output [3, H', W'] back to the input's kind: grey or RGB, linear or not, + alpha.

    ``outside``: the linear values beyond the network's range to add back, resized to the
    result (True: the picture's own, ``beyond_peak``; False: none).
    """
    colour = np.clip(result, 0.0, 1.0).transpose(1, 2, 0)
    if picture.channels == 1:
        colour = colour.mean(axis=2, keepdims=True)
    if picture.linear:
        colour = srgb_to_linear(colour) * np.float32(peak)
        extra = beyond_peak(picture, peak) if outside is True else outside
        if isinstance(extra, np.ndarray):
            height, width = colour.shape[:2]
            colour = colour + np.stack([resize_plane(extra[:, :, c], height, width)
                                        for c in range(extra.shape[2])], axis=2)
    alpha = picture.alpha if alpha is None else alpha
    if alpha is not None:
        alpha = resize_plane(alpha, colour.shape[0], colour.shape[1])
        colour = np.concatenate([colour, np.clip(alpha, 0.0, 1.0)[:, :, None]], axis=2)
    data = np.ascontiguousarray(colour, dtype=np.float32)
    if data.shape[2] == 1:
        data = data[:, :, 0]
    return Media("image", data, index, dict(metadata or {}),
                 colorspace="linear" if picture.linear else "srgb")


def model_runner(ctx: GenerationContext, model: str, image_input: str = "image",
                 output: str = "result",
                 extra: Callable[[int], Mapping[str, np.ndarray]] | None = None) -> RunTiles:
    """A tile runner calling ``model`` through the server (batched, cancellable).

    ``extra(n)`` gives the other inputs for a batch of ``n`` tiles (e.g. a noise level).
    """

    def run(tiles: np.ndarray) -> np.ndarray:
        feed = {image_input: tiles, **(extra(len(tiles)) if extra else {})}
        return np.asarray(ctx.infer(model, feed)[output])

    return run


def apply_tiled(run: RunTiles, image: np.ndarray, tiling: Tiling, out_channels: int = 3,
                stage: str = "tiles") -> Generator[Progress, None, np.ndarray]:
    return run_tiled(run, image, tiling, out_channels, stage)

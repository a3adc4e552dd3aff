"""``effect.interpolate``: the frames between two frames, from a motion-warping U-Net (no torch).

The network is time-conditioned (an input ``t`` in (0, 1)) rather than a midpoint
model applied recursively: any number of in-between frames comes out evenly spaced
(``frames=2`` gives t = 1/3 and 2/3, which halving can never reach), and every frame
is made from the two real inputs, so errors never compound through generated frames.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
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
    linear_to_srgb,
)

from .common import IMAGE_FORMATS, TILE_FIELD, apply_tiled, beyond_peak, linear_peak, to_media

MODELS = Path(__file__).parent / "models"
MODEL = "effect.interpolate"
MULTIPLE = 16  # interpolate_net.MULTIPLE: tile sides must divide by it (the recipe checks)
# Context around each tile: the largest trained motion (~12 px from the middle frame)
# plus the block matcher's reach (36 px blocks at quarter resolution); the cross-fade
# hides what the U-Net's coarsest level sees beyond. 32 px left visible seams at borders.
HALO = 48
BLEND = 16
MAX_FRAMES = 15

Infer = Callable[[Mapping[str, np.ndarray]], np.ndarray]  # feed -> "result"


class InterpolateParams(BaseModel):
    """Parameters of effect.interpolate."""

    frames: int = Field(1, ge=1, le=MAX_FRAMES, description="In-between frames to make, evenly "
                        "spaced in time: frame i (0-based) is at t = (i + 1) / (frames + 1).")
    tile: int = TILE_FIELD


def check(params: InterpolateParams, inputs: Sequence[Picture]) -> list[tuple[str, str]]:
    if len(inputs) < 2:
        return []  # the core reports a missing input itself
    first, second = inputs[0], inputs[1]
    problems = []
    if (second.width, second.height) != (first.width, first.height):
        problems.append(("inputs[1]", f"must be the same size as inputs[0] ({second.width}x"
                         f"{second.height} vs {first.width}x{first.height})"))
    kinds = {1: "grey", 3: "RGB"}
    if second.channels != first.channels:
        problems.append(("inputs[1]", f"must have the same channels as inputs[0] "
                         f"({kinds.get(second.channels, second.channels)} vs "
                         f"{kinds.get(first.channels, first.channels)})"))
    if second.linear != first.linear:
        def kind(p: Picture) -> str:
            return "scene-linear" if p.linear else "display-referred"

        problems.append(("inputs[1]", f"must be encoded like inputs[0] ({kind(second)} "
                         f"{second.format} vs {kind(first)} {first.format})"))
    return problems


def frame_times(frames: int) -> list[float]:
    return [(i + 1) / (frames + 1) for i in range(frames)]


def network_pair(first: Picture, second: Picture) -> tuple[np.ndarray, float]:
    """Both frames as one [6, H, W] float32 array in the network's space, and their common peak.

    Like ``common.network_input``, but a linear pair shares one peak (taken over both
    frames), so a highlight keeps its brightness through the sequence.
    """
    peak = 1.0
    if first.linear:
        both = np.concatenate([first.colour.ravel(), second.colour.ravel()])
        peak = linear_peak(both)
    planes = []
    for picture in (first, second):
        colour = picture.colour
        if picture.linear:
            colour = linear_to_srgb(np.clip(colour / peak, 0.0, None))
        if colour.shape[2] == 1:
            colour = np.repeat(colour, 3, axis=2)
        planes.append(np.clip(colour, 0.0, 1.0).transpose(2, 0, 1))
    return np.ascontiguousarray(np.concatenate(planes, axis=0), dtype=np.float32), peak


def between(first: np.ndarray | None, second: np.ndarray | None, t: float) -> np.ndarray | bool:
    """The frames' values beyond their common peak, blended at ``t`` as their alpha is (False:
    neither has any)."""
    if first is None and second is None:
        return False
    zero = np.zeros_like(first if first is not None else second)
    return ((1.0 - t) * (zero if first is None else first) + t * (zero if second is None else second)
            ).astype(np.float32)


def tiling(tile: int) -> Tiling:
    return Tiling(tile=tile, halo=HALO, blend=BLEND, multiple=MULTIPLE, batch=2)


def pair_runner(infer: Infer, t: float) -> RunTiles:
    """A tile runner for stacked pairs ([N, 6, h, w]): split, add t, run."""

    def run(tiles: np.ndarray) -> np.ndarray:
        feed = {"image": np.ascontiguousarray(tiles[:, :3]), "image2": np.ascontiguousarray(tiles[:, 3:]),
                "t": np.full(len(tiles), t, np.float32)}
        return np.asarray(infer(feed))

    return run


def interpolate_pair(infer: Infer, pair: np.ndarray, t: float, tile: int,
                     stage: str = "tiles") -> Generator[Progress, None, np.ndarray]:
    """The frame at ``t`` ([3, H, W]) from a stacked pair ([6, H, W]), tile by tile."""
    return apply_tiled(pair_runner(infer, t), pair, tiling(tile), 3, stage)


def apply(ctx: GenerationContext, params: InterpolateParams, inputs: Sequence[Picture],
          seed: int) -> Iterator[Progress | Media]:
    first, second = inputs[0], inputs[1]
    pair, peak = network_pair(first, second)

    def infer(feed: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(ctx.infer(MODEL, feed)["result"])

    alphas = None
    if first.alpha is not None or second.alpha is not None:
        opaque = np.ones((first.height, first.width), np.float32)
        alphas = (opaque if first.alpha is None else first.alpha,
                  opaque if second.alpha is None else second.alpha)
    over_first, over_second = beyond_peak(first, peak), beyond_peak(second, peak)  # once, not per frame
    for index, t in enumerate(frame_times(params.frames)):
        result = yield from interpolate_pair(infer, pair, t, params.tile,
                                             stage=f"frame {index + 1}/{params.frames}")
        alpha = None if alphas is None else ((1.0 - t) * alphas[0] + t * alphas[1]).astype(np.float32)
        yield to_media(result, first, peak, index, alpha=alpha, metadata={"t": f"{t:.6g}"},
                       outside=between(over_first, over_second, t))


EFFECT = Effect(
    name=MODEL,
    modality="image",
    parameters=InterpolateParams,
    apply=apply,
    formats=IMAGE_FORMATS,
    models=(ModelSource(MODEL, MODELS / "interpolate"),),
    description="Frame interpolation: the frames between two frames, from a U-Net that estimates "
    "the motion and warps both frames to each in-between time.",
    min_inputs=2,
    max_inputs=2,
    check=check,
)
RECIPES = (
    Recipe(name=MODEL, description="Time-conditioned warping U-Net on photographs with synthetic "
           "camera motion", build="museforge.plugins.effect.interpolate_recipe:build",
           models_dir=MODELS / "interpolate"),
)

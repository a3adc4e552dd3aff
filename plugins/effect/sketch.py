"""``effect.sketch``: line art in, a finished colour image out; hints, variations, redone regions (no torch).

The inputs are named by ``roles``: the ``sketch`` (dark strokes on white or transparency), and
optionally ``hints`` (scribbles of colour where the artist wants it), a ``previous`` result and
a ``mask`` (white: redo). With previous and mask, only the masked region is made anew, with a
new seed, following the kept colours around it; every pixel outside the mask is returned
exactly as it was, and the new region fades in over ``blend`` pixels inside the mask.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from museforge import Effect, GenerationContext, Media, ModelSource, Picture, Progress, Recipe, defer_import

from .sketch_canvas import SIZE, Canvas, drawing_pixels, hint_planes, ink, mask_plane, straight_rgba
from .sketch_finish import beneath, finish
from .sketch_hints import empty, keep_outside
from .sketch_palette import flat, hint_colours, nearest_palette
from .sketch_region_colours import DRAW_OUTPUT, PALETTE_OUTPUT, region_colours
from .sketch_regions import FAINT, STROKE, drawn_regions, fill_regions

defer_import("scipy.ndimage")  # imported where used, after start-up (see defer_import)

__all__ = ["EFFECT", "MODEL", "RECIPES", "STYLE", "SketchParams", "finish", "in_palette", "solid_ink",
           "style_codes"]

MODELS = Path(__file__).parent / "models"
MODEL = "effect.sketch"
STYLE = 8  # sketch_net.STYLE (the recipe checks)
MAX_COUNT = 16
MAX_SIDE = 2048  # the network colours a 64 x 64 canvas: a larger drawing adds no detail, only cost
# Lossless RGBA only: a JPEG would drop the transparency and WebP would blur what a redo keeps
# exactly. A JPEG or WebP sketch comes back as PNG.
FORMATS = ("png", "png16")
# OpenMoji's colour versions paint what the line art fills with ink dark grey inside a black
# rim: on the 1,858 training pairs, ink 3 px or more inside its edge is #3F3F3F for 81 % of
# pixels (black 12 %); at 2.8 px 32 % (black 50 %), nearer the edge under 6 %.
FILL_DEPTH = 3.0  # canvas pixels
DRAWN = 0.1  # the darkest stroke of a sketch with anything drawn on it (after the paper is taken off)
RIM = 2.0  # drawing pixels: the least depth painted grey, so a small drawing keeps a pixel of black rim
Role = Literal["sketch", "hints", "previous", "mask"]
_ROLES: tuple[Role, ...] = ("sketch", "hints", "previous", "mask")


class SketchParams(BaseModel):
    """Parameters of effect.sketch."""

    roles: list[Role] | None = Field(None, min_length=1, max_length=4, description=(
        "What each input is, in order: 'sketch' (required: dark strokes on white or transparent), "
        "'hints' (colour scribbles: opaque pixels of an RGBA image, or non-white pixels of an RGB "
        "one, ask for their colour), 'previous' (an earlier result) and 'mask' (white where to "
        "redo; needs 'previous'). Default: sketch, hints, previous, mask, as many as given."))
    hint_fill: Literal["region", "strokes"] = Field("region", description=(
        "'region': a colour hint fills the whole region the strokes enclose around it (where one "
        "region holds hints of several colours, each pixel takes the nearest one's), as a bucket "
        "fill would, and the network shades it; 'strokes': only the scribbled pixels are asked "
        "for, the network choosing the rest of the region. Regions that reach the border (the "
        "background) are never filled."))
    variation: float = Field(0.5, ge=0.0, le=2.0, description=(
        "How far the seed's colouring may stray from the most likely one. 0: the same colouring "
        "for every seed, each region the colour closest on average to what the artists of the "
        "most similar drawings chose. Above 0 a seed draws each region's colour from those "
        "artists' own choices: 0.5 as often as they made each, lower keeps nearer their commonest, "
        "1 and 2 favour their rarer choices more (a colour none of them used is never drawn)."))
    count: int = Field(1, ge=1, le=MAX_COUNT, description=(
        "Variations to make, seeds seed, seed + 1, ...: one network call for all of them."))
    palette: Literal["openmoji", "free"] = Field("openmoji", description=(
        "'openmoji': every colour snapped to the nearest of the 24 flat colours OpenMoji's artists "
        "colour with (and the colours of your hints), for clean flat fills, and every hinted pixel "
        "exactly its hint's colour; 'free': the network's own colours, softly shaded."))
    keep_lines: bool = Field(True, description=(
        "Lay the artist's own strokes over the result at full resolution (crisp at any size); "
        "false: the network's redrawn lines alone."))
    ink_fills: Literal["dark_grey", "black"] = Field("dark_grey", description=(
        "Areas the sketch fills solid with ink (its pixels 3 canvas pixels, 1/21 of the drawing's "
        "longer side, and at least 2 pixels, or more from the ink's edge), with keep_lines: 'dark_grey' "
        "paints them OpenMoji's dark grey (#3F3F3F) inside a black rim, as its artists colour black "
        "things; 'black': as drawn."))
    blend: int = Field(3, ge=0, le=64, description=(
        "With a mask: pixels inside the mask's edge over which the new region fades in (0: a hard "
        "edge). Pixels outside the mask are never changed."))


def resolved_roles(params: SketchParams, count: int) -> list[Role]:
    return list(params.roles) if params.roles is not None else list(_ROLES[:count])


def _read_as(params: SketchParams, roles: list[Role]) -> str:
    """What the default roles made of the inputs, when that is what went wrong."""
    if params.roles is not None or len(roles) != 3:
        return ""
    return ("; no roles were given, so the 3 inputs were read as the default sketch, hints, previous "
            "(no mask): to redo a region send roles=[\"sketch\",\"previous\",\"mask\"]")


def check(params: SketchParams, inputs: Sequence[Picture]) -> list[tuple[str, str]]:
    roles = resolved_roles(params, len(inputs))
    if len(roles) != len(inputs):
        return [("parameters.roles", f"names {len(roles)} inputs but {len(inputs)} were sent")]
    problems: list[tuple[str, str]] = []
    for role in dict.fromkeys(roles):
        if roles.count(role) > 1:
            problems.append(("parameters.roles", f"'{role}' is named {roles.count(role)} times"))
    if "sketch" not in roles:
        problems.append(("parameters.roles", "must name one input 'sketch'"))
    if ("previous" in roles) != ("mask" in roles):
        problems.append(("parameters.roles", "'previous' and 'mask' go together: a region is redone "
                         "in a previous result" + _read_as(params, roles)))
    if problems:
        return problems
    sketch = inputs[roles.index("sketch")]
    if max(sketch.width, sketch.height) > MAX_SIDE:
        return [(f"inputs[{roles.index('sketch')}]", f"the sketch may be at most {MAX_SIDE} px a side "
                 f"({sketch.width}x{sketch.height}): it is coloured on a 64 x 64 canvas, so a larger "
                 "one adds no detail")]
    for i, (role, picture) in enumerate(zip(roles, inputs, strict=True)):
        if (picture.width, picture.height) != (sketch.width, sketch.height):
            problems.append((f"inputs[{i}]", f"the {role} must be the sketch's size ({picture.width}x"
                             f"{picture.height} vs {sketch.width}x{sketch.height})"))
        elif picture.linear:
            problems.append((f"inputs[{i}]", f"the {role} must be a display-referred picture (PNG, "
                             f"JPEG or WebP), not scene-linear {picture.format}"))
    return problems


def style_codes(seed: int, count: int, variation: float) -> np.ndarray:
    """(count, STYLE) codes: seed + i draws the i-th, so a variation is reproducible alone."""
    codes = [np.random.default_rng(seed + i).standard_normal(STYLE) for i in range(count)]
    return (np.stack(codes) * variation).astype(np.float32)


def in_palette(image: np.ndarray, shares: np.ndarray | None, lines: np.ndarray, hinted: np.ndarray,
               extra: np.ndarray, params: SketchParams, seed: int, *, kept: np.ndarray | None = None,
               before: np.ndarray | None = None, share_power: float | None = None,
               parts: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(4, H, W) one network result on its canvas in the colours ``params.palette`` asks for.

    ``shares``: the colour memory's answers for it (None from a graph without one); ``lines``:
    the canvas's ink; ``hinted``: the artist's own hints, regions filled (painted exactly);
    ``extra``: the colours they scribbled, which join the palette; ``kept`` and ``before``: a
    redo's kept pixels and the previous result's colours, ``share_power`` how the version draws
    from the memory (``sketch_region_colours``); ``parts``: ``lines``' regions, when already known.
    """
    if params.palette != "openmoji":
        return image
    if shares is not None:
        image = region_colours(image, shares, lines, seed, params.variation, hinted=hinted[4] > 0.5,
                               kept=kept, before=before, share_power=share_power, parts=parts)
    return flat(image, extra, hinted)


def solid_ink(params: SketchParams, lines: np.ndarray) -> np.ndarray | None:
    """(H, W) bool: ink of the drawing ``lines`` FILL_DEPTH canvas pixels or more from its edge,
    painted FILL_GREY; None where nothing is (``ink_fills`` black, or strokes not laid over)."""
    if params.ink_fills == "black" or not params.keep_lines:
        return None
    from scipy import ndimage
    # Under 43 px the scaled depth falls below 2, and under 22 below 1: every stroke would be grey.
    depth = drawing_pixels(FILL_DEPTH, lines.shape, RIM)
    # Padded with paper: ink running off the drawing's edge has its rim there too.
    return ndimage.distance_transform_edt(np.pad(lines > 0.5, 1))[1:-1, 1:-1] >= depth


def fade_in(mask: np.ndarray, blend: int) -> np.ndarray:
    """(H, W) weight of the new region: 0 outside the mask, rising to 1 over ``blend`` pixels inside."""
    from scipy import ndimage
    inside = mask >= 0.5
    if blend == 0 or inside.all():  # all redone: no edge to fade from
        return inside.astype(np.float32)
    return np.clip(ndimage.distance_transform_edt(inside) / blend, 0.0, 1.0).astype(np.float32)


def fade(old: np.ndarray, new: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(4, H, W) straight RGBA: ``new`` over ``old`` by ``weight``, mixed premultiplied so a pixel
    fading between transparent and opaque does not darken."""
    alpha = old[3] * (1.0 - weight) + new[3] * weight
    rgb = old[:3] * (old[3] * (1.0 - weight)) + new[:3] * (new[3] * weight)
    rgb = np.where(alpha > 1e-6, rgb / np.maximum(alpha, 1e-6), 0.0)
    return np.concatenate([rgb, alpha[None]]).astype(np.float32)


def apply(ctx: GenerationContext, params: SketchParams, inputs: Sequence[Picture],
          seed: int) -> Iterator[Progress | Media]:
    # ctx.check_cancelled() between the full-resolution stages: each takes up to ~1-2 s at 2048 px,
    # and a run that goes on after its call was cancelled holds the effect's overdue places.
    named = dict(zip(resolved_roles(params, len(inputs)), inputs, strict=True))
    sketch = named["sketch"]
    canvas = Canvas(sketch.height, sketch.width)
    lines = ink(sketch)
    # Regions are told apart on the canvas by every stroke pixel, as at full resolution.
    strokes = canvas.strokes(lines, STROKE)
    ctx.check_cancelled()
    hints = hint_planes(named["hints"]) if "hints" in named else empty(sketch.height, sketch.width)
    ctx.check_cancelled()
    # The artist's hint colours join the palette; kept pixels of a previous result do not compete.
    scribbled = canvas.to_network(hints, hints=True)
    extra = hint_colours(scribbled)
    filled = fill_regions(hints, lines) if params.hint_fill == "region" else hints
    ctx.check_cancelled()
    # Each pen stroke of a live session comes here: resize again only what the fill changed.
    hinted = scribbled if filled is hints else _off_strokes(canvas.to_network(filled, hints=True), strokes,
                                                            scribbled)
    network_hints = hinted
    previous = weight = kept = before = None
    if "previous" in named:
        ctx.check_cancelled()
        previous = straight_rgba(named["previous"])
        mask = mask_plane(named["mask"])
        weight = fade_in(mask, params.blend)
        ctx.check_cancelled()
        # The artist's own hints win inside the mask.
        network_hints = canvas.to_network(np.where(filled[4:5] > 0.5, filled, keep_outside(previous, mask)),
                                          hints=True)
        kept = (network_hints[4] > 0.5) & (hinted[4] <= 0.5)
        ctx.check_cancelled()
        redone = canvas.to_network(keep_outside(previous, 1.0 - mask), hints=True)
        before = np.where((redone[4] > 0.5) & (redone[3] > 0.5), nearest_palette(redone[:3]), -1)
    feed = {
        "lines": np.repeat(canvas.to_network(lines[None])[None], params.count, axis=0),
        "hints": np.repeat(network_hints[None], params.count, axis=0),
        "style": style_codes(seed, params.count, params.variation),
    }
    # Nothing drawn: nothing to colour (the network would paint a shape of its own on blank paper).
    drawn = float(lines.max(initial=0.0)) >= DRAWN
    outputs = ctx.infer(MODEL, feed) if drawn else {}
    solid = solid_ink(params, lines)  # once: every variation has the same strokes
    fills_beneath = beneath(lines) if drawn and params.keep_lines else None  # as the solid ink: once
    shares = outputs.get(PALETTE_OUTPUT)  # from a version with a colour memory (3 on)
    power = outputs.get(DRAW_OUTPUT)  # 5 on
    # Strokes as they part regions on the canvas, with the faint ink that closes gaps beside them
    # (sketch_regions.drawn_regions), and the regions themselves: once, not per variation.
    canvas_ink = np.where(strokes, 1.0, np.where(canvas.strokes(lines, FAINT), FAINT, 0.0)).astype(np.float32)
    coloured_by_region = drawn and shares is not None and params.palette == "openmoji"
    parts = drawn_regions(canvas_ink) if coloured_by_region else None
    # A previous flattened on paper (no transparency) keeps its paper where the new region has none.
    under = previous if previous is not None and bool((previous[3] >= 1.0).all()) else None
    for index in range(params.count):
        ctx.check_cancelled()
        if drawn:
            memory = None if shares is None else shares[index]
            coloured = in_palette(np.asarray(outputs["image"][index]), memory, canvas_ink,
                                  hinted, extra, params, seed + index, kept=kept, before=before,
                                  share_power=None if power is None else float(power[index]), parts=parts)
            result = canvas.from_network(coloured)
            ctx.check_cancelled()
            result = finish(result, lines if params.keep_lines else None, solid, fills_beneath)
        else:
            result = np.zeros((4, *lines.shape), np.float32)
        if previous is not None and weight is not None:
            ctx.check_cancelled()
            if under is not None:
                result = over(result, under)
            result = np.where(weight[None] > 0.0, fade(previous, result, weight), previous)
        yield Media("image", np.ascontiguousarray(result.transpose(1, 2, 0)), index,
                    {"seed": str(seed + index), "variation": f"{params.variation:g}"})


def _off_strokes(filled: np.ndarray, strokes: np.ndarray, scribbled: np.ndarray) -> np.ndarray:
    """(5, SIZE, SIZE) region-filled hints without the canvas pixels on a stroke that the fill only
    brushed (a thin stroke's anti-aliased edge) and that touch a region left unhinted: painted, they
    would carry the hint's colour over the stroke into it. Scribbles drawn on a stroke stay."""
    from scipy import ndimage
    unhinted = ndimage.binary_dilation(~strokes & (filled[4] <= 0.5), np.ones((3, 3), bool))
    out = filled.copy()
    out[:, strokes & unhinted & (scribbled[4] <= 0.5)] = 0.0
    return out


def over(new: np.ndarray, under: np.ndarray) -> np.ndarray:
    """(4, H, W) straight RGBA ``new`` composited over the opaque ``under``."""
    rgb = new[:3] * new[3:] + under[:3] * (1.0 - new[3:])
    return np.concatenate([rgb, np.ones_like(new[3:])]).astype(np.float32)


EFFECT = Effect(
    name=MODEL,
    modality="image",
    parameters=SketchParams,
    apply=apply,
    formats=FORMATS,
    models=(ModelSource(MODEL, MODELS / "sketch"),),
    description="Colours and finishes line art (dark strokes on white or transparent) as an RGBA image, "
    f"following optional colour hints; seeds give variations, and a previous result with a mask has only "
    f"the masked region redone. Drawings are coloured on a {SIZE} x {SIZE} canvas and scaled back.",
    min_inputs=1,
    max_inputs=4,
    input_formats=("png", "png16", "jpeg", "webp"),  # drawings: display-referred, never scene-linear EXR
    check=check,
    max_input_pixels=MAX_SIDE * MAX_SIDE,  # a frame far larger is refused from its header, not decoded
)
RECIPES = (
    Recipe(name=MODEL, description="pix2pix U-Net with a BicycleGAN style code on OpenMoji line art and "
           "colour pairs", build="museforge.plugins.effect.sketch_recipe:build",
           models_dir=MODELS / "sketch"),
)

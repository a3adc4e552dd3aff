"""One colour per region, chosen from the colour memory's answers (numpy and SciPy; no torch).

A served sketch graph with a colour memory (``sketch_memory``) also answers ``palette``: at each
pixel, the share of the nearest training drawings painting it each of the 24 palette colours
(or nothing). Pooled over a region the strokes enclose, that is how those artists coloured the
object; the region takes the colour with the least expected CIELAB error against their choices,
the colour a careful guess would pick, so a face whose neighbours are yellow and orange comes
out yellow-orange rather than whichever was drawn first. ``variation`` lets a seed stray, by the
rule the model version gives with its memory (so a pinned version keeps its colourings):

- versions 3 and 4: each region draws its colour with odds falling by e for every
  ``TEMPERATURE`` x ``variation`` ΔE of expected error above the best;
- version 5 on (a ``DRAW_OUTPUT`` output holding the power p): each region draws one of the
  colours its neighbours painted it, with odds share^(1 / (p x variation)), at p = 2 and
  variation 0.5 the artists' own shares. A colour none of them painted there is never drawn:
  drawing by expected error favours the greys between their choices (docs/effects/sketch.md).

0 is always the best choice, and larger values pick the artists' other choices more often. No
rule paints a region in one of yellow's edge shades (``sketch_palette.EDGE_SHADES``): the
neighbours' answers hold them where a yellow part's outline runs, and no artist fills with them.
A region answered in them more than in anything else takes the fill colour nearest all its answers.

Regions are the drawing's (``sketch_regions.drawn_regions``: paper reaching the border only through
a gap in the strokes is not background). Paint that touches the border (the background of an open
shape) counts as one region over the pixels the network made opaque. A region holding an artist's
hint is left to the network, which follows the hint; in a redo, pixels kept from the previous
result are left out, so the redone part of a region is decided on its own.
"""

from __future__ import annotations

import functools

import numpy as np

from museforge import defer_import

from .sketch_palette import EDGE_SHADES, OPENMOJI_PALETTE, palette_rgb
from .sketch_regions import drawn_regions

defer_import("skimage.color")  # imported where used, after start-up (see defer_import)

__all__ = ["DRAW_OUTPUT", "NONE", "PALETTE_OUTPUT", "SHARE_POWER", "TEMPERATURE", "region_colours"]

PALETTE_OUTPUT = "palette"
DRAW_OUTPUT = "palette_draw"  # (N,) the share power a version's memory is drawn from with (5 on)
NONE = len(OPENMOJI_PALETTE)  # the memory's answer where a drawing has no paint
SHARE_POWER = 2.0  # version 5's: variation 0.5 draws by the neighbours' shares as they are
# ΔE of expected error per e-fold of odds at variation 1: versions 3 and 4 draw so (10: seeds vary
# too little), and so does a redo whose neighbours painted the region only its old colour.
TEMPERATURE = 15.0
_EDGES = [OPENMOJI_PALETTE.index(shade) for shade in EDGE_SHADES]


@functools.cache
def _palette_distances() -> np.ndarray:
    from skimage.color import rgb2lab
    lab = rgb2lab(palette_rgb()[None])[0]
    return np.linalg.norm(lab[:, None] - lab[None], axis=-1)


def region_colours(image: np.ndarray, shares: np.ndarray, lines: np.ndarray, seed: int, variation: float, *,
                   hinted: np.ndarray | None = None, kept: np.ndarray | None = None,
                   before: np.ndarray | None = None, share_power: float | None = None,
                   parts: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(4, H, W) straight RGBA ``image`` with each region's paint in one palette colour.

    ``shares``: (25, H, W) the memory's answers; ``lines``: (H, W) ink; ``seed`` draws the
    choices when ``variation`` > 0. ``hinted``: (H, W) bool, pixels the artist gave a colour:
    their regions are left to the network. ``kept``: pixels of a previous result kept as they
    were, left out, so a region half inside a redone mask has its redone half decided alone.
    ``before``: (H, W) palette index the previous result had (-1: none); with ``variation`` > 0
    a redone region does not take its previous colour again, since a redo asks for another.
    ``share_power``: the version's ``DRAW_OUTPUT`` (None: a version without one draws by expected error).
    ``parts``: ``drawn_regions(lines)`` when the caller has it already (one sketch, several variations).
    """
    labels, outside = drawn_regions(lines) if parts is None else parts
    count = len(outside) - 1
    paint = (labels > 0) & (~outside[labels] | (image[3] > 0.5))
    if kept is not None:
        paint &= ~kept
    where, answers = labels[paint], shares[:NONE, paint].astype(np.float64)
    # One bincount a colour: np.add.at over every pixel cost ~4 ms a result on the live path.
    totals = np.stack([np.bincount(where, weights=a, minlength=count + 1) for a in answers], axis=1)
    answered = totals.sum(axis=1)
    chosen = answered > 0
    chosen[0] = False
    if hinted is not None:
        chosen[labels[hinted]] = False
    if not chosen.any():
        return image
    answered_share = totals[chosen] / answered[chosen, None]  # (regions, 24)
    share = _fill_colours(answered_share)
    # A region answered mostly in edge shades takes the fill colour nearest all its answers (by
    # expected error, below), not whichever sliver of another colour is left beside them.
    expected = np.where(share.any(axis=1, keepdims=True), share, answered_share) @ _palette_distances()
    expected[:, _EDGES] = np.inf  # never a region's colour, however near the others they lie
    if variation > 0.0:
        draws = np.random.default_rng(seed).random(count + 1)[chosen]
        if before is not None:  # a redo asks for another colour than the region had
            previous = _commonest(before, labels, paint, count)[chosen]
            expected[previous] = np.inf
            share[previous] = 0.0
        if share_power is None:
            odds = _by_expected_error(expected, variation)
        else:
            # Scaled to the commonest first, so that a small variation's high power cannot underflow.
            top = share.max(axis=1, keepdims=True)
            odds = (share / np.where(top > 0.0, top, 1.0)) ** (1.0 / (share_power * variation))
            # A redo whose neighbours painted only the old colour; a region answered mostly in edge shades.
            alone = top[:, 0] == 0.0
            odds[alone] = _by_expected_error(expected[alone], variation)
        cumulative = np.cumsum(odds / odds.sum(axis=1, keepdims=True), axis=1)
        # A draw past the rounded total takes the last colour it could have drawn, never an edge shade.
        last = NONE - 1 - np.argmax(odds[:, ::-1] > 0.0, axis=1)
        picks = np.minimum((cumulative < draws[:, None]).sum(axis=1), last)
    else:
        picks = np.argmin(expected, axis=1)
    colour_of = np.full(count + 1, -1)
    colour_of[np.flatnonzero(chosen)] = picks
    per_pixel = np.where(paint, colour_of[labels], -1)
    out = image.copy()
    where = per_pixel >= 0
    out[:3, where] = palette_rgb()[per_pixel[where]].T
    return out


def _fill_colours(share: np.ndarray) -> np.ndarray:
    """(regions, 24) ``share`` without the edge shades (sketch_palette.EDGE_SHADES), which the
    neighbours' answers hold where a yellow part's outline crosses the region, renormalised; all
    zero for a region they gave less of anything else than of the edge shades."""
    fills = share.copy()
    fills[:, _EDGES] = 0.0
    total = fills.sum(axis=1, keepdims=True)
    kept = total > share[:, _EDGES].sum(axis=1, keepdims=True)
    return np.where(kept, fills / np.where(kept, total, 1.0), 0.0)


def _by_expected_error(expected: np.ndarray, variation: float) -> np.ndarray:
    """Odds falling by e for every TEMPERATURE x variation ΔE of expected error above the best."""
    return np.exp(-(expected - expected.min(axis=1, keepdims=True)) / (TEMPERATURE * variation))


def _commonest(before: np.ndarray, labels: np.ndarray, paint: np.ndarray, count: int) -> np.ndarray:
    """(count + 1, 24) bool: each region's commonest ``before`` colour over its paint (none: all False)."""
    colours = np.where(before[paint] >= 0, before[paint], NONE)
    tally = np.bincount(labels[paint] * (NONE + 1) + colours, minlength=(count + 1) * (NONE + 1))
    tally = tally.reshape(count + 1, NONE + 1)
    tally[:, NONE] = 0
    out = np.zeros((count + 1, NONE), bool)
    has = tally.max(axis=1) > 0
    out[np.flatnonzero(has), tally[has].argmax(axis=1)] = True
    return out

"""Flat colours for ``effect.sketch``: snap a result to the artists' palette (numpy, no torch).

OpenMoji's artists colour from a small fixed palette: the 24 commonest opaque colours of the
training drawings cover 81% of their opaque pixels (the rest are anti-aliased edges between
them). The network's colours come out near those, a little off and softly shaded; snapping
each pixel to the nearest palette colour in CIELAB gives the flat fills of the real drawings.
Colours the artist hinted join the palette, so a hint is never snapped away, and a pixel the
artist hinted takes the hinted colour: in flat colours, a region's hint is its colour.
"""

from __future__ import annotations

import numpy as np

from museforge import defer_import

defer_import("skimage.color")  # imported where used, after start-up (see defer_import)

__all__ = ["EDGE_SHADES", "OPENMOJI_PALETTE", "flat", "hint_colours", "nearest_palette", "palette_rgb",
           "snap"]

# sketch_data.commonest_colours(sketch_train(), 24), as hex (tests recompute it from the committed
# split). Serving imports this module, so it must not import the data module (the export kit).
OPENMOJI_PALETTE = (
    "000000", "ffffff", "fcea2b", "92d3f5", "d0cfce", "3f3f3f", "ea5a47", "d22f27", "9b9b9a", "a57939",
    "f4aa41", "61b2e4", "b1cc33", "8967aa", "f1b31c", "5c9e31", "e27022", "6a462f", "b399c8", "ffa7c0",
    "7e7516", "1e50a0", "bdaf21", "ecdb29",
)
# Three of them are yellow's anti-aliased shades against its black outline (#7E7516 is half of
# #FCEA2B): on the training drawings none fills a region (under 3% of their pixels lie 1 px inside
# a patch of their own colour, against 16-71% for the other colours but black), so no region the
# colour memory colours is painted one (sketch_region_colours; tests recompute it). The snap keeps
# them: they are the edges of strokes in the artists' images too.
EDGE_SHADES = ("7e7516", "bdaf21", "ecdb29")
_MAX_HINT_COLOURS = 16


def _rgb(hexes: tuple[str, ...]) -> np.ndarray:
    return np.array([[int(h[i:i + 2], 16) for i in (0, 2, 4)] for h in hexes], np.float32) / 255.0


def palette_rgb(extra: np.ndarray | None = None) -> np.ndarray:
    """(24 + K, 3) the palette's colours in [0, 1], then the (K, 3) ``extra`` ones."""
    palette = _rgb(OPENMOJI_PALETTE)
    if extra is not None and len(extra):
        palette = np.concatenate([palette, np.asarray(extra, np.float32)])
    return palette


def hint_colours(hints: np.ndarray) -> np.ndarray:
    """(K, 3) the commonest colours (8-bit) of the hinted pixels of (5, H, W) hints, at most 16."""
    where = hints[4] > 0.5
    if not where.any():
        return np.zeros((0, 3), np.float32)
    quantised = np.rint(hints[:3, where].T * 255.0).astype(np.int64)
    colours, counts = np.unique(quantised, axis=0, return_counts=True)
    return colours[np.argsort(-counts, kind="stable")[:_MAX_HINT_COLOURS]].astype(np.float32) / 255.0


def nearest_palette(rgb: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """(H, W) index of each pixel's nearest colour (CIELAB) in ``palette_rgb(extra)``, for (3, H, W) RGB."""
    from skimage.color import rgb2lab
    palette_lab = rgb2lab(palette_rgb(extra)[None])[0]
    lab = rgb2lab(np.clip(rgb.transpose(1, 2, 0), 0.0, 1.0))
    # The sums of squares np.linalg.norm forms, in its order, channel by channel: no (H, W, K, 3)
    # temporaries and no reduction over a 3-long axis: 1.1 ms a 64 x 64 result, not 3.8; same indices.
    squares = np.zeros((*lab.shape[:2], len(palette_lab)), lab.dtype)  # float32 from skimage 0.26, as norm's
    for channel in range(3):
        difference = lab[:, :, channel, None] - palette_lab[None, None, :, channel]
        squares += difference * difference
    return np.argmin(np.sqrt(squares), axis=-1)


def snap(image: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """(4, H, W) straight RGBA with every pixel's colour the nearest palette colour (CIELAB)."""
    rgb = palette_rgb(extra)[nearest_palette(image[:3], extra)].transpose(2, 0, 1)
    return np.concatenate([rgb, image[3:]]).astype(np.float32)


def flat(image: np.ndarray, extra: np.ndarray, hinted: np.ndarray) -> np.ndarray:
    """``snap`` with the ``extra`` hint colours, then every pixel of (5, H, W) ``hinted`` (the
    artist's hints, regions filled, not kept pixels of a previous result) in its hinted colour."""
    out = snap(image, extra)
    where = hinted[4] > 0.5
    out[:3, where] = hinted[:3, where]
    out[3, where] = np.maximum(out[3, where], hinted[3, where])
    return out

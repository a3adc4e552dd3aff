"""Regions of a drawing: the paper its strokes enclose (numpy and SciPy; serving and export alike).

A colour hint fills its region: an artist who scribbles yellow inside the face means the face,
not the few pixels under the scribble. Regions that reach the picture's border are the
background and are never filled.

A hand leaves gaps where the pen lifted, and through a gap the face reaches the border: it
would be background. ``drawn_regions`` closes gaps up to ``2 * GAP`` canvas pixels wide (and
counts strokes as faint as ``FAINT``) to decide what is background, as a paint program's "close
gap" fill does, but divides the rest by the drawing's own strokes: closing also joins a stroke's
end to any stroke nearby, and a face must not be cut in two where an eye's line ends near its
outline (docs/effects/sketch.md).
"""

from __future__ import annotations

import numpy as np

from museforge import defer_import

from .sketch_canvas import drawing_pixels

defer_import("scipy.ndimage")  # imported where used, after start-up (see defer_import)

__all__ = ["FAINT", "GAP", "STROKE", "drawn_regions", "fill_regions", "regions"]

STROKE = 0.5  # ink above this is a stroke, below it paper
# Chosen on roughened training drawings, by how much of each painted region ends up enclosed and
# one colour, less the transparent paper enclosed with it (held-out drawings not looked at).
GAP = 2.0  # px of the SIZE px canvas, scaled with the drawing (at least 1): gaps up to 4 px are closed
FAINT = 0.2  # a stroke this dark still closes its gap (a light, broken pencil line)


def regions(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the paper between strokes ((H, W) int, 0 on strokes) and say which labels touch the border."""
    from scipy import ndimage
    labels, count = ndimage.label(lines < STROKE)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.zeros(count + 1, bool)
    outside[border] = True
    outside[0] = False
    return labels, outside


def drawn_regions(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``regions``, but paper that reaches the border only through gaps in the strokes is not
    background: it is divided into regions of its own by the drawing's strokes."""
    from scipy import ndimage
    labels, outside = regions(lines)
    ink = lines >= FAINT
    if not ink.any():
        return labels, outside
    radius = drawing_pixels(GAP, lines.shape)  # at least 1: under 32 px the scaled width would close nothing
    thick = ndimage.distance_transform_edt(~ink) <= radius
    leaked = (labels > 0) & outside[labels] & ~_background_with_gaps_closed(lines, thick)
    pieces, count = ndimage.label(leaked)
    # A piece wholly under the thickened strokes is background squeezed between strokes, or
    # between a stroke and the border, that lies nearer enclosed paper: not paper a gap let out.
    anchored = np.zeros(count + 1, bool)
    anchored[pieces[leaked & ~thick]] = True
    anchored[0] = False
    leaked &= anchored[pieces]
    if not leaked.any():
        return labels, outside
    pieces, count = ndimage.label(leaked)
    # Old labels whose paper all leaked stay in ``outside`` (True), labelling no pixel.
    return (np.where(leaked, pieces + len(outside) - 1, labels),
            np.concatenate([outside, np.zeros(count, bool)]))


def _background_with_gaps_closed(lines: np.ndarray, thick: np.ndarray) -> np.ndarray:
    """(H, W) bool: the paper that reaches the border once the strokes are ``thick``: thickened,
    which closes every gap up to twice as wide however its ends lie (a morphological closing
    would leave a gap between two thin stroke ends open)."""
    from scipy import ndimage
    labels, outside = regions(thick.astype(np.float32))
    # The paper under the thickening goes with the paper nearest it.
    nearest = ndimage.distance_transform_edt(labels == 0, return_distances=False, return_indices=True)
    labels = np.where(lines < STROKE, labels[tuple(nearest)], 0)
    return outside[labels]


def fill_regions(hints: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """(5, H, W) hints where every enclosed region of ``lines`` ((H, W) ink) with a hint in it is
    hinted throughout, each pixel taking the colour of the nearest hinted pixel in its region."""
    from scipy import ndimage
    present = hints[4] > 0.5
    if not present.any():
        return hints
    labels, outside = drawn_regions(lines)
    out = hints.copy()
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or outside[label]:
            continue
        region = labels[box] == label
        scribbled = present[box] & region
        if not scribbled.any():
            continue
        # Nearest scribbled pixel of this region (the box may hold other regions' scribbles).
        _, (rows, columns) = ndimage.distance_transform_edt(~scribbled, return_indices=True)
        colours = hints[(slice(0, 4), *box)][:, rows, columns]
        window = out[(slice(None), *box)]
        window[:4, region] = colours[:, region]
        window[4, region] = 1.0
    return out

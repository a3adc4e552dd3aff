"""The sketch's strokes laid over a coloured result, as a pen's ink lies over paint (numpy, SciPy).

A stroke pixel of OpenMoji's colour versions is the stroke's black over the fill beneath it, in
the share the stroke covers: half-covered, half the fill's colour shows. The network's result
already holds a line of its own there, drawn dark, so laying the sketch's ink over the result
itself darkened the stroke twice: where a stroke covered 50-70 % of a pixel, the served results
were black (lightness under 25) at half of such pixels, the artists' at 15 %
(docs/effects/sketch.md). The ink is laid over the fill beneath instead, the colour of the
nearest pixel with no stroke on it (``UNDER``) within ``REACH``, premultiplied, so that the outer
edge of an outline over transparency is black at the stroke's cover, as the artists' is. Ink
farther than ``REACH`` from such a pixel (a tone or shading the artist laid over an area, the
middle of a broad stroke) lies over the result's own colour there, as before: a grey tone inside
an outline would otherwise take the transparent paper outside it and turn black. Where the
network's own line is darker than the ink over its fill ("darken", channel by channel), it stays:
it redraws a light pencil line in the full black the artists draw with.
"""

from __future__ import annotations

import numpy as np

from museforge import defer_import

from .sketch_canvas import drawing_pixels

defer_import("scipy.ndimage")  # imported where used, after start-up (see defer_import)

__all__ = ["FILL_GREY", "REACH", "UNDER", "beneath", "finish"]

FILL_GREY = np.array([63, 63, 63], np.float32) / np.float32(255.0)
# Ink lighter than this is paper with a trace of stroke: the fill beneath a stroke is taken from
# the nearest such pixel. sketch_regions.FAINT's level; chosen on 400 training drawings, clean and
# roughened (0.05 to 0.5 read within 0.002 of each other in histogram distance; 0.15-0.3 best in ΔE).
UNDER = 0.2
# Canvas pixels, scaled with the drawing (at least 1): a stroke's anti-aliased edge lies next to the
# paper beside it (1 px, or 1.41 across a corner); a tone's pixels lie farther, behind its outline.
REACH = 1.5
Beneath = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def beneath(lines: np.ndarray) -> Beneath | None:
    """((rows, columns) of the inked pixels whose fill comes from elsewhere, (rows, columns) of
    the pixel with ink under ``UNDER`` each takes it from, within ``REACH``) for (H, W) ink; None
    when no pixel has that much ink, or every pixel has."""
    from scipy import ndimage
    inked = lines >= UNDER
    if not inked.any() or inked.all():
        return None
    distance, nearest = ndimage.distance_transform_edt(inked, return_indices=True)
    taken = inked & (distance <= drawing_pixels(REACH, lines.shape))
    rows, columns = np.nonzero(taken)
    return (rows, columns), (nearest[0][taken], nearest[1][taken])


def finish(result: np.ndarray, lines: np.ndarray | None, solid: np.ndarray | None = None,
           under: Beneath | None = None) -> np.ndarray:
    """(4, H, W) straight RGBA: the strokes ``lines`` ((H, W) darkness) in black over the fill
    beneath them, the network's darker lines kept, and the ``solid`` ink (``sketch.solid_ink``) in
    FILL_GREY. ``under``: ``beneath(lines)`` when the caller has it already (several variations)."""
    if lines is None:
        return result
    index = beneath(lines) if under is None else under
    fill = result
    if index is not None:
        (rows, columns), (from_rows, from_columns) = index
        fill = result.copy()
        fill[:, rows, columns] = result[:, from_rows, from_columns]
    alpha = fill[3] * (1.0 - lines) + lines
    premultiplied = fill[:3] * (fill[3] * (1.0 - lines))
    if solid is not None:
        premultiplied = premultiplied + np.where(solid, lines, 0.0)[None] * FILL_GREY[:, None, None]
    laid = np.where(alpha > 1e-6, premultiplied / np.maximum(alpha, 1e-6), 0.0)
    darker = (result[3] > 0.5) if solid is None else (result[3] > 0.5) & ~solid
    rgb = np.where(darker[None], np.minimum(result[:3], laid), laid)
    return np.concatenate([rgb, np.maximum(result[3:], alpha[None])]).astype(np.float32)

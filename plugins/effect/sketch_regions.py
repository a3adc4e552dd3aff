"""Regions of a drawing: the paper its strokes enclose (numpy and SciPy; serving and export alike).

A colour hint fills its region: an artist who scribbles yellow inside the face means the face,
not the few pixels under the scribble. Regions that reach the picture's border are the
background and are never filled.
"""

from __future__ import annotations

import numpy as np

from museforge import defer_import

defer_import("scipy.ndimage")  # imported where used, after start-up (see defer_import)

__all__ = ["STROKE", "fill_regions", "regions"]

STROKE = 0.5  # ink above this is a stroke, below it paper


def regions(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the paper between strokes ((H, W) int, 0 on strokes) and say which labels touch the border."""
    from scipy import ndimage
    labels, count = ndimage.label(lines < STROKE)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.zeros(count + 1, bool)
    outside[border] = True
    outside[0] = False
    return labels, outside


def fill_regions(hints: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """(5, H, W) hints where every enclosed region of ``lines`` ((H, W) ink) with a hint in it is
    hinted throughout, each pixel taking the colour of the nearest hinted pixel in its region."""
    from scipy import ndimage
    present = hints[4] > 0.5
    if not present.any():
        return hints
    labels, outside = regions(lines)
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

"""Regions of a drawing with gaps in its strokes: what is background, and what is not cut apart."""

from __future__ import annotations

import numpy as np

from museforge.plugins.effect.sketch_hints import empty
from museforge.plugins.effect.sketch_palette import OPENMOJI_PALETTE
from museforge.plugins.effect.sketch_region_colours import NONE, region_colours
from museforge.plugins.effect.sketch_regions import drawn_regions, fill_regions, regions

CENTRE = (32, 32)


def ring(gap: int, size: int = 64, radius: float = 21.0) -> np.ndarray:
    """(size, size) ink: a 2 px circle about the centre with a gap of exactly ``gap`` rows at its right."""
    rows, columns = np.mgrid[:size, :size]
    middle = size // 2
    lines = (np.abs(np.hypot(rows - middle, columns - middle) - radius) < 1.0).astype(np.float32)
    top = middle - gap // 2
    lines[top:top + gap, middle:] = 0.0
    return lines


def enclosed(lines: np.ndarray, at: tuple[int, int]) -> bool:
    labels, outside = drawn_regions(lines)
    return bool(labels[at] > 0 and not outside[labels[at]])


def same_as_strict(lines: np.ndarray) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(drawn_regions(lines), regions(lines), strict=True))


def test_a_gap_a_pen_left_does_not_make_the_inside_background() -> None:
    for gap in (1, 2, 3, 4):
        lines = ring(gap)
        strict_labels, strict_outside = regions(lines)
        assert strict_outside[strict_labels[CENTRE]], gap  # the gap joins it to the border...
        assert enclosed(lines, CENTRE), gap  # ...but it is the circle's inside
        labels, outside = drawn_regions(lines)
        assert outside[labels[0, 0]] and labels[0, 0] != labels[CENTRE]
    for gap in (5, 9):  # an opening is an opening: a C is not an O
        assert not enclosed(ring(gap), CENTRE), gap
    # A faint stretch of stroke (a light pencil) closes its gap as well.
    faint = ring(0)
    faint[30:35, 50:56] = np.where(faint[30:35, 50:56] > 0, 0.3, 0.0)
    assert regions(faint)[1][regions(faint)[0][CENTRE]] and enclosed(faint, CENTRE)


def test_a_small_drawing_closes_a_one_pixel_gap_as_its_canvas_does() -> None:
    lines = ring(1, size=24, radius=8.0)  # the width scaled from 64 px would be under a pixel
    assert regions(lines)[1][regions(lines)[0][12, 12]] and enclosed(lines, (12, 12))


def test_closed_drawings_keep_their_own_regions() -> None:
    lines = ring(0)
    lines[9:56, 32] = 1.0  # a closed circle cut in two by a stroke from rim to rim
    assert same_as_strict(lines)
    # Nor does background squeezed between a stroke and the border become a region of its own.
    assert same_as_strict(ring(0, radius=29.0))  # the rim 2 px from the border


def test_a_stroke_ending_near_the_outline_does_not_cut_the_inside_in_two() -> None:
    lines = ring(3)
    lines[14:51, 32] = 1.0  # a line down the middle, ending 2 px short of the rim at both ends
    labels, outside = drawn_regions(lines)
    inside = (np.hypot(*(np.mgrid[:64, :64] - 32)) < 19) & (lines < 0.5)
    assert len(np.unique(labels[inside])) == 1 and labels[32, 28] > 0 and not outside[labels[32, 28]]


def test_a_hint_fills_a_circle_whose_stroke_has_a_gap_and_not_the_background() -> None:
    lines = ring(3)
    hints = empty(64, 64)
    hints[:4, 32, 30], hints[4, 32, 30] = [1.0, 0.0, 0.0, 1.0], 1.0
    filled = fill_regions(hints, lines)
    inside = (np.hypot(*(np.mgrid[:64, :64] - 32)) < 19) & (lines < 0.5)
    assert (filled[4][inside] == 1.0).all() and (filled[:3, inside] == [[1.0], [0.0], [0.0]]).all()
    assert filled[4][:, :8].sum() == 0.0 and filled[4][:, 58:].sum() == 0.0  # the background is not filled


def test_the_inside_of_a_gapped_circle_takes_one_colour_of_its_own() -> None:
    lines = ring(3)
    rows, columns = np.mgrid[:64, :64]
    inside = (np.hypot(rows - 32, columns - 32) < 19) & (lines < 0.5)
    yellow, blue = OPENMOJI_PALETTE.index("fcea2b"), OPENMOJI_PALETTE.index("92d3f5")
    shares = np.zeros((NONE + 1, 64, 64), np.float32)
    shares[blue] = 1.0  # the neighbours paint the paper around it blue...
    shares[:, inside] = 0.0
    shares[yellow, inside] = 1.0  # ...and its inside yellow
    image = np.zeros((4, 64, 64), np.float32)
    image[:3] = np.random.default_rng(0).random((3, 64, 64))
    image[3] = 1.0  # the network painted everything
    out = region_colours(image, shares, lines, seed=0, variation=0.0)
    assert (out[:3, inside] == out[:3, 32:33, 32:33].reshape(3, 1)).all()
    assert np.allclose(out[:3, 32, 32], [0xfc / 255, 0xea / 255, 0x2b / 255])
    assert np.allclose(out[:3, 2, 2], [0x92 / 255, 0xd3 / 255, 0xf5 / 255])

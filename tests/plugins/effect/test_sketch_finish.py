"""effect.sketch's strokes over a coloured result: the ink over the fill beneath it, never twice."""

from __future__ import annotations

import numpy as np

from museforge.plugins.effect.sketch_finish import FILL_GREY, beneath, finish

YELLOW = np.array([252, 234, 43], np.float32) / 255.0


def _filled(colour: np.ndarray, size: int = 8) -> np.ndarray:
    out = np.ones((4, size, size), np.float32)
    out[:3] = colour[:, None, None]
    return out


def _stroke(size: int = 8) -> np.ndarray:
    """A vertical stroke: full ink in column 3, 60 % in column 4 (its anti-aliased edge)."""
    lines = np.zeros((size, size), np.float32)
    lines[:, 3], lines[:, 4] = 1.0, 0.6
    return lines


def test_a_half_covered_pixel_shows_the_fill_beneath_not_the_networks_line_darkened_again() -> None:
    result = _filled(YELLOW)
    result[:3, :, 3:5] = 0.1  # the network drew the line too, a little wide and not quite black
    out = finish(result, _stroke())
    assert np.allclose(out[:3, :, 3], 0.0)
    # 40 % of the yellow beneath shows, as in the artists' images; the old finish gave 0.04.
    assert np.allclose(out[:3, :, 4], np.minimum(0.1, 0.4 * YELLOW)[:, None])
    result[:3, :, 3:5] = YELLOW[:, None, None]  # a network that left the stroke yellow
    assert np.allclose(finish(result, _stroke())[:3, :, 4], 0.4 * YELLOW[:, None])
    assert np.array_equal(finish(result, _stroke())[:, :, :3], result[:, :, :3])  # paper untouched


def test_the_outer_edge_of_an_outline_over_transparency_is_black_at_the_strokes_cover() -> None:
    result = np.zeros((4, 8, 8), np.float32)
    result[:3] = 0.9  # whatever colour the network left under transparency
    out = finish(result, _stroke())
    assert np.allclose(out[:3, :, 3:5], 0.0)
    assert np.allclose(out[3, :, 4], 0.6) and np.allclose(out[3, :, 3], 1.0) and not out[3, :, :3].any()


def test_a_light_pencil_line_keeps_the_darker_line_the_network_redrew() -> None:
    result = _filled(YELLOW)
    result[:3, :, 3] = 0.0  # the network's line in full black
    lines = np.zeros((8, 8), np.float32)
    lines[:, 3] = 0.4  # the artist's light pencil
    out = finish(result, lines)
    assert np.allclose(out[:3, :, 3], 0.0)
    result[:3, :, 3] = YELLOW[:, None]  # without the network's line, the pencil's own darkness
    assert np.allclose(finish(result, lines)[:3, :, 3], 0.6 * YELLOW[:, None])


def test_solid_ink_is_grey_whatever_the_network_drew_and_beneath_is_computed_once() -> None:
    result = _filled(YELLOW)
    result[:3, :, 3] = 0.0
    lines, solid = _stroke(), np.zeros((8, 8), bool)
    solid[:, 3] = True
    under = beneath(lines)
    assert under is not None
    (_, columns), (_, from_columns) = under
    assert (from_columns[columns == 3] == 2).all() and (from_columns[columns == 4] == 5).all()
    out = finish(result, lines, solid, under)
    assert np.allclose(out[:3, :, 3], FILL_GREY[:, None])
    assert np.array_equal(out, finish(result, lines, solid))
    assert beneath(np.zeros((8, 8), np.float32)) is None and beneath(np.ones((8, 8), np.float32)) is None
    assert finish(result, None) is result


def test_a_tone_inside_an_outline_lies_over_its_own_colour_not_the_paper_outside() -> None:
    result = np.zeros((4, 16, 16), np.float32)
    result[:3, 3:13, 3:13] = YELLOW[:, None, None]
    result[3, 3:13, 3:13] = 1.0
    lines = np.zeros((16, 16), np.float32)
    lines[3:13, 3:13] = 0.3  # a pencil tone over the whole shape
    lines[3, 3:13] = lines[12, 3:13] = lines[3:13, 3] = lines[3:13, 12] = 1.0
    out = finish(result, lines)
    # Ink far from paper lies over the result's own colour there; it had taken the transparent
    # paper outside the outline and come out black.
    assert np.allclose(out[:3, 8, 8], 0.7 * YELLOW) and np.allclose(out[:3, 5, 5], 0.7 * YELLOW)
    assert np.allclose(out[:3, 3, 8], 0.0) and out[3].min() == 0.0 and out[3, 8, 8] == 1.0

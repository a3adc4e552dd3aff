"""Yellow's anti-aliased edge shades are in the palette, but no region is ever painted one."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from museforge.plugins.effect import sketch_data
from museforge.plugins.effect.sketch_palette import (
    EDGE_SHADES,
    OPENMOJI_PALETTE,
    nearest_palette,
    palette_rgb,
)
from museforge.plugins.effect.sketch_region_colours import NONE, SHARE_POWER, region_colours

OLIVE, YELLOW, TAN = (OPENMOJI_PALETTE.index(h) for h in ("7e7516", "fcea2b", "a57939"))
BLACK, WHITE = OPENMOJI_PALETTE.index("000000"), OPENMOJI_PALETTE.index("ffffff")


def test_the_edge_shades_fill_no_region_of_the_training_drawings() -> None:
    colour = sketch_data.sketch_train().unit_colour()[:600]
    total, inside = np.zeros(len(OPENMOJI_PALETTE)), np.zeros(len(OPENMOJI_PALETTE))
    for rgba in colour:
        index = np.where(rgba[3] > 0.5, nearest_palette(rgba[:3]), -1)
        for k in np.unique(index[index >= 0]):
            patch = index == k
            total[k] += patch.sum()
            inside[k] += ndimage.binary_erosion(patch, np.ones((3, 3))).sum()
    share = inside / total
    edges = [OPENMOJI_PALETTE.index(shade) for shade in EDGE_SHADES]
    assert share[edges].max() < 0.03
    fills = [k for k, shade in enumerate(OPENMOJI_PALETTE) if shade not in EDGE_SHADES and shade != "000000"]
    assert share[fills].min() > 0.1  # every other colour but the outlines' black fills patches
    assert np.allclose(palette_rgb()[OLIVE], np.round(palette_rgb()[YELLOW] * 255 / 2) / 255, atol=1 / 255)


def _square(answers: dict[int, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, shares, lines): a closed square whose neighbours answered ``answers`` inside it."""
    lines = np.zeros((16, 16), np.float32)
    lines[3, 3:13] = lines[12, 3:13] = lines[3:13, 3] = lines[3:13, 12] = 1.0
    shares = np.zeros((NONE + 1, 16, 16), np.float32)
    shares[NONE] = 1.0
    for colour, part in answers.items():
        shares[colour, 4:12, 4:12] = part
    shares[NONE, 4:12, 4:12] = 1.0 - sum(answers.values())
    image = np.ones((4, 16, 16), np.float32)
    return image, shares, lines


@pytest.mark.parametrize("variation", [0.0, 0.5, 1.0])
def test_a_region_whose_neighbours_answer_olive_beside_yellow_is_painted_yellow(variation: float) -> None:
    image, shares, lines = _square({OLIVE: 0.4, YELLOW: 0.45})
    for seed in range(40):
        out = region_colours(image, shares, lines, seed, variation, share_power=SHARE_POWER)
        assert np.allclose(out[:3, 8, 8], palette_rgb()[YELLOW]), seed


@pytest.mark.parametrize("answers", [{OLIVE: 0.9}, {OLIVE: 0.85, BLACK: 0.05}, {OLIVE: 0.6, WHITE: 0.3}])
def test_a_region_answered_mostly_in_edge_shades_takes_the_fill_colour_nearest_its_answers(
        answers: dict[int, float]) -> None:
    image, shares, lines = _square(answers)
    # At variation 0, the fill colour nearest the olive they mostly gave: #A57939, not the sliver
    # of black or white beside it (which would be all that is left without the edge shades).
    out = region_colours(image, shares, lines, 3, 0.0, share_power=SHARE_POWER)
    assert np.allclose(out[:3, 8, 8], palette_rgb()[TAN])
    for variation in (0.5, 1.0, 2.0):
        for share_power in (None, SHARE_POWER):
            for seed in range(10):
                out = region_colours(image, shares, lines, seed, variation, share_power=share_power)
                painted = OPENMOJI_PALETTE[int(np.argmin(np.abs(palette_rgb() - out[:3, 8, 8]).sum(axis=1)))]
                assert painted not in EDGE_SHADES, (variation, share_power, seed)


def test_a_redo_of_a_region_answered_in_edge_shades_never_draws_one() -> None:
    image, shares, lines = _square({OLIVE: 0.5, YELLOW: 0.4})
    before = np.full((16, 16), YELLOW)
    for seed in range(40):
        out = region_colours(image, shares, lines, seed, 0.5, share_power=SHARE_POWER, before=before)
        painted = OPENMOJI_PALETTE[int(np.argmin(np.abs(palette_rgb() - out[:3, 8, 8]).sum(axis=1)))]
        assert painted not in EDGE_SHADES and painted != "fcea2b", seed  # another colour than before

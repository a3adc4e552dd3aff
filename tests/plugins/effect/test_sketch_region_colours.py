"""One colour per region from the colour memory's answers: the choice, hints, redone regions, seeds."""

from __future__ import annotations

import numpy as np

from museforge.plugins.effect.sketch_palette import OPENMOJI_PALETTE, nearest_palette, palette_rgb
from museforge.plugins.effect.sketch_region_colours import NONE, SHARE_POWER, region_colours

YELLOW, ORANGE, BLUE, WHITE = (OPENMOJI_PALETTE.index(h) for h in ("fcea2b", "f1b31c", "92d3f5", "ffffff"))


def two_boxes() -> np.ndarray:
    """(32, 32) ink: two closed squares side by side, the left one's inside at [6:26, 3:14]."""
    lines = np.zeros((32, 32), np.float32)
    for left in (2, 17):
        lines[5, left:left + 13] = lines[26, left:left + 13] = 1.0
        lines[5:27, left] = lines[5:27, left + 12] = 1.0
    return lines


LEFT = (slice(6, 26), slice(3, 14))
RIGHT = (slice(6, 26), slice(18, 29))


def answers(left: dict[int, float], right: dict[int, float]) -> np.ndarray:
    shares = np.zeros((NONE + 1, 32, 32), np.float32)
    shares[NONE] = 1.0
    for box, choice in ((LEFT, left), (RIGHT, right)):
        shares[(NONE, *box)] = 0.0
        for colour, share in choice.items():
            shares[(colour, *box)] = share
    return shares


def network_image() -> np.ndarray:
    """A shaded, patchy network result: opaque inside the boxes, a different colour every pixel."""
    rng = np.random.default_rng(0)
    image = np.zeros((4, 32, 32), np.float32)
    image[:3] = rng.random((3, 32, 32))
    image[3] = 0.0
    for box in (LEFT, RIGHT):
        image[(3, *box)] = 1.0
    return image


def colours_in(image: np.ndarray, box: tuple[slice, slice]) -> set[int]:
    return set(np.unique(nearest_palette(image[(slice(0, 3), *box)])).tolist())


def test_each_region_takes_the_colour_with_the_least_expected_error() -> None:
    shares = answers({YELLOW: 0.6, ORANGE: 0.4}, {BLUE: 0.8, WHITE: 0.2})
    out = region_colours(network_image(), shares, two_boxes(), seed=1, variation=0.0)
    assert colours_in(out, LEFT) == {YELLOW}  # between yellow and orange the nearer to both wins
    assert colours_in(out, RIGHT) == {BLUE}
    assert np.array_equal(out[(slice(0, 3), *LEFT)], np.broadcast_to(palette_rgb()[YELLOW][:, None, None],
                                                                    (3, 20, 11)))
    assert np.array_equal(out[3], network_image()[3])  # the network's transparency stays


def test_a_hinted_region_is_left_to_the_network_and_seeds_only_vary_with_variation() -> None:
    shares = answers({YELLOW: 0.5, ORANGE: 0.5}, {BLUE: 0.5, WHITE: 0.5})
    hinted = np.zeros((32, 32), bool)
    hinted[10, 6] = True
    image = network_image()
    out = region_colours(image, shares, two_boxes(), seed=1, variation=0.0, hinted=hinted)
    assert np.array_equal(out[(slice(None), *LEFT)], image[(slice(None), *LEFT)])
    assert len(colours_in(out, RIGHT)) == 1
    steady = [region_colours(image, shares, two_boxes(), seed=s, variation=0.0) for s in range(6)]
    assert all(np.array_equal(steady[0], o) for o in steady)
    bold = [region_colours(image, shares, two_boxes(), seed=s, variation=2.0) for s in range(12)]
    varied = {tuple(sorted(colours_in(out, RIGHT))) for out in bold}
    assert {(BLUE,), (WHITE,)} <= varied
    again = region_colours(image, shares, two_boxes(), seed=5, variation=2.0)
    assert np.array_equal(again, region_colours(image, shares, two_boxes(), seed=5, variation=2.0))


def test_a_redone_half_region_is_decided_alone_and_not_as_it_was() -> None:
    shares = answers({YELLOW: 1.0}, {BLUE: 1.0})
    kept = np.zeros((32, 32), bool)
    kept[16:, :] = True  # the bottom half of both boxes is kept from the previous result
    before = np.where(kept, -1, YELLOW)
    image = network_image()
    out = region_colours(image, shares, two_boxes(), seed=3, variation=0.5, kept=kept, before=before)
    assert np.array_equal(out[:, 16:], image[:, 16:])
    top_left = (slice(6, 16), slice(3, 14))
    assert len(colours_in(out, top_left)) == 1 and YELLOW not in colours_in(out, top_left)  # a redo changes
    assert colours_in(out, (slice(6, 16), slice(18, 29))) == {BLUE}  # it was not blue before
    steady = region_colours(image, shares, two_boxes(), seed=3, variation=0.0, kept=kept, before=before)
    assert colours_in(steady, top_left) == {YELLOW}  # variation 0: always the best choice


def test_seeds_draw_only_what_the_neighbours_painted_and_at_their_shares() -> None:
    # Yellow and blue split the left box's neighbours: the least expected error lies between them
    # (what variation 0 gives), but a seed draws one of the two, never a colour nobody painted there.
    shares = answers({YELLOW: 0.75, BLUE: 0.25}, {WHITE: 1.0})
    image = network_image()

    def left(seed: int, variation: float, power: float | None = SHARE_POWER) -> int:
        [colour] = colours_in(region_colours(image, shares, two_boxes(), seed=seed, variation=variation,
                                             share_power=power), LEFT)
        return colour

    best = left(0, 0.0)
    picked = [left(s, 0.5) for s in range(400)]
    assert set(picked) == {YELLOW, BLUE} and best != BLUE
    assert 0.65 < picked.count(YELLOW) / len(picked) < 0.85  # variation 0.5: the shares as they are
    bolder = [left(s, 2.0) for s in range(400)]
    assert set(bolder) == {YELLOW, BLUE} and bolder.count(BLUE) > picked.count(BLUE)
    white = {colours_in(region_colours(image, shares, two_boxes(), seed=s, variation=2.0,
                                       share_power=SHARE_POWER), RIGHT).pop() for s in range(50)}
    assert white == {WHITE}  # the neighbours all agree: no seed strays
    # A version without a draw rule of its own (3 and 4) keeps drawing by expected error, which
    # reaches colours between the two that nobody painted.
    assert len({left(s, 0.5, None) for s in range(400)} - {YELLOW, BLUE}) >= 3


def test_a_redo_draws_another_colour_the_neighbours_painted_or_else_the_nearest_other() -> None:
    image = network_image()
    kept = np.zeros((32, 32), bool)
    before = np.full((32, 32), YELLOW)
    mixed = answers({YELLOW: 0.6, ORANGE: 0.3, BLUE: 0.1}, {YELLOW: 1.0})
    redone = [region_colours(image, mixed, two_boxes(), seed=s, variation=0.5, kept=kept, before=before,
                             share_power=SHARE_POWER) for s in range(200)]
    assert {c for out in redone for c in colours_in(out, LEFT)} == {ORANGE, BLUE}
    right = {c for out in redone for c in colours_in(out, RIGHT)}
    assert YELLOW not in right and len(right) >= 2  # only yellow was painted: by expected error

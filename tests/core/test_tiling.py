"""Tiled application: exact for local models, seamless for wide ones, any size and scale."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import pytest

from museforge.engine.generator import Progress
from museforge.engine.tiling import Tiling, run_tiled


def box(tiles: np.ndarray, radius: int) -> np.ndarray:
    """A (2r+1)^2 mean with zero padding, like a conv layer at a tile's edge."""
    h, w = tiles.shape[2:]
    padded = np.pad(tiles, ((0, 0), (0, 0), (radius, radius), (radius, radius)))
    out = np.zeros_like(tiles)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out += padded[:, :, dy:dy + h, dx:dx + w]
    return out / (2 * radius + 1) ** 2


def whole(image: np.ndarray, radius: int) -> np.ndarray:
    """The same model on the whole frame, mirrored at the frame's border."""
    padded = np.pad(image, ((0, 0), (radius, radius), (radius, radius)), mode="reflect")
    return box(padded[None], radius)[0, :, radius:-radius, radius:-radius]


def finish(gen: Generator[Progress, None, np.ndarray]) -> tuple[np.ndarray, list[Progress]]:
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return stop.value, events


@pytest.mark.parametrize(("h", "w", "tile"), [(100, 130, 32), (64, 64, 64), (20, 300, 48), (7, 9, 256)])
def test_tiles_with_enough_halo_equal_the_whole_frame(h: int, w: int, tile: int) -> None:
    image = np.random.default_rng(h * w).random((3, h, w)).astype(np.float32)
    result, events = finish(run_tiled(lambda t: box(t, 2), image, Tiling(tile=tile, halo=2, blend=0), 3))
    np.testing.assert_allclose(result, whole(image, 2), atol=1e-5)
    assert events[-1].completed == events[-1].total


def test_a_too_small_halo_shows_up_and_blending_hides_the_seam() -> None:
    # A model that sees 6 px with only 1 px of halo: hard tile edges appear without blending.
    yy, xx = np.mgrid[0:96, 0:160]
    image = np.stack([np.sin(xx / 7.0) * np.cos(yy / 5.0)] * 3).astype(np.float32)
    reference = whole(image, 6)
    hard, _ = finish(run_tiled(lambda t: box(t, 6), image, Tiling(tile=32, halo=1, blend=0), 3))
    soft, _ = finish(run_tiled(lambda t: box(t, 6), image, Tiling(tile=32, halo=1, blend=12), 3))
    assert np.abs(soft - reference).max() < np.abs(hard - reference).max()

    def seam_jump(result: np.ndarray) -> float:
        # The largest column-to-column jump of the error, against the typical one: a hard
        # tile edge is a step in the error; cross-fading spreads it over the blend band.
        steps = np.abs(np.diff(result - reference, axis=2)).mean(axis=(0, 1))
        return float(steps.max() / (np.median(steps) + 1e-12))

    assert seam_jump(hard) > 2 * seam_jump(soft)  # measured: 21.5 vs 7.4


def test_scaled_output_and_batches() -> None:
    image = np.random.default_rng(1).random((3, 50, 70)).astype(np.float32)
    calls: list[int] = []

    def double(tiles: np.ndarray) -> np.ndarray:
        calls.append(len(tiles))
        return tiles.repeat(2, axis=2).repeat(2, axis=3)  # nearest x2: needs no halo

    result, events = finish(run_tiled(double, image, Tiling(tile=16, halo=0, blend=0, scale=2,
                                                            batch=3), 3))
    np.testing.assert_array_equal(result, image.repeat(2, axis=1).repeat(2, axis=2))
    tiles = 4 * 5  # ceil(50/16) x ceil(70/16)
    assert sum(calls) == tiles and max(calls) == 3 and len(events) == len(calls)


def test_model_multiples_are_met_with_extra_context() -> None:
    seen: set[tuple[int, int]] = set()

    def needs_eight(tiles: np.ndarray) -> np.ndarray:
        seen.add(tiles.shape[2:])
        assert tiles.shape[2] % 8 == 0 and tiles.shape[3] % 8 == 0
        return tiles

    image = np.random.default_rng(2).random((3, 37, 53)).astype(np.float32)
    result, _ = finish(run_tiled(needs_eight, image, Tiling(tile=20, halo=3, multiple=8), 3))
    np.testing.assert_allclose(result, image, atol=1e-6)
    assert seen == {(32, 32)}


def test_invalid_tilings_are_refused() -> None:
    with pytest.raises(ValueError):
        Tiling(tile=4)
    with pytest.raises(ValueError):
        Tiling(tile=32, blend=32)

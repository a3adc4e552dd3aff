"""image.tiles on the shipped model: kinds, looks, seams, sheets, palettes, walks and bad parameters."""

from __future__ import annotations

import io
import itertools
from typing import Any

import grpc
import numpy as np
import pytest
from PIL import Image

from museforge.client import Client, field_violations
from museforge.plugins.image import tiles, tiles_data
from museforge.plugins.image.tiles_quality import colours_per_tile, seam_ratio


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32) / 255.0


def make(client: Client, seed: int = 1, count: int = 1, **params: Any) -> list[np.ndarray]:
    reply = client.generate("image.tiles", params, seed=seed, count=count)
    return [pixels(a.data) for a in reply.artifacts]


def test_serving_constants_match_the_trained_model() -> None:
    from museforge.plugins.image import tiles_gan

    assert (tiles.KINDS, tiles.LOOKS, tiles.TILE) == (tiles_data.KINDS, tiles_data.LOOKS, tiles_data.TILE)
    assert (tiles.CELLS, tiles.NOISE_CHANNELS) == (tiles_gan.CELLS, tiles_gan.NOISE_CHANNELS)


def test_a_tile_is_32_pixels_on_a_small_palette(client: Client) -> None:
    images = make(client, seed=4, count=6, kind="wall", look="red")
    assert all(img.shape == (32, 32, 3) for img in images)
    assert max(colours_per_tile(np.stack(images))) <= tiles.DEFAULT_PALETTE
    assert min(img.std() for img in images) > 0.02  # drawn, not flat


@pytest.mark.parametrize("palette", [4, 24])
def test_palette_bounds_the_colours(client: Client, palette: int) -> None:
    [img] = make(client, seed=2, palette=palette)
    assert 2 <= colours_per_tile(img[None])[0] <= palette


def test_full_colour_when_the_palette_is_null(client: Client) -> None:
    [quantised] = make(client, seed=2)
    [full] = make(client, seed=2, palette=None)
    assert colours_per_tile(full[None])[0] > colours_per_tile(quantised[None])[0]
    assert np.abs(full - quantised).mean() < 0.06  # the same tile, fewer colours


def test_sheets_join_seamlessly_and_wrap(client: Client) -> None:
    sheets = np.stack(make(client, seed=7, count=8, kind="floor", columns=4, rows=3, palette=None))
    assert sheets.shape == (8, 96, 128, 3)
    assert seam_ratio(sheets) <= 1.25  # pooled over the sheets, as the target is stated
    # Where copies of a sheet meet is a step like any other inside it: the repeat is exact.
    for sheet in sheets:
        repeated = np.tile(sheet, (2, 2, 1))
        np.testing.assert_array_equal(repeated[96:, 128:], sheet)
        steps = np.abs(np.diff(repeated, axis=0))
        assert steps[95].mean() <= steps.mean() * 2.5  # the join row is no outlier


def test_pixel_scale_enlarges_with_hard_edges(client: Client) -> None:
    [small] = make(client, seed=3, kind="wall")
    [big] = make(client, seed=3, kind="wall", pixel_scale=4)
    assert big.shape == (128, 128, 3)
    np.testing.assert_array_equal(big[::4, ::4], small)
    np.testing.assert_array_equal(big[1::4, 2::4], small)


def test_random_look_is_drawn_per_image_and_reported(client: Client) -> None:
    reply = client.generate("image.tiles", {"look": "random"}, seed=11, count=12)
    looks = {a.metadata["x.look"] for a in reply.artifacts}
    assert looks <= set(tiles.LOOKS) and len(looks) > 1
    again = client.generate("image.tiles", {}, seed=11, count=12)
    assert [a.data for a in again.artifacts] == [a.data for a in reply.artifacts]


def test_walk_between_two_seeds(client: Client) -> None:
    frames = make(client, seed=3, look="green", interpolate_to=9, frames=5, palette=None)
    [start] = make(client, seed=3, look="green", palette=None)
    [end] = make(client, seed=9, look="green", palette=None)
    assert len(frames) == 5
    np.testing.assert_array_equal(frames[0], start)
    np.testing.assert_allclose(frames[-1], end, atol=1 / 255)
    steps = [np.abs(b - a).mean() for a, b in itertools.pairwise(frames)]
    assert max(steps) < np.abs(end - start).mean()


def test_truncation_one_is_the_default_and_lower_pulls_toward_typical_tiles(client: Client) -> None:
    plain = make(client, seed=5, count=4, kind="wall", palette=None)
    assert all(np.array_equal(a, b) for a, b in zip(plain, make(client, seed=5, count=4, kind="wall",
                                                                 palette=None, truncation=1.0), strict=True))
    near = make(client, seed=5, count=4, kind="wall", palette=None, truncation=0.3)
    assert not any(np.array_equal(a, b) for a, b in zip(plain, near, strict=True))

    # Pulled toward the mean draw, the four tiles differ less from each other than before.
    def spread(images: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(images, 2)]))
    assert spread(near) < spread(plain)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"kind": "ceiling"}, "parameters.kind"), ({"look": "plaid"}, "parameters.look"),
     ({"palette": 1}, "parameters.palette"), ({"palette": 300}, "parameters.palette"),
     ({"columns": 0}, "parameters.columns"), ({"rows": 17}, "parameters.rows"),
     ({"pixel_scale": "big"}, "parameters.pixel_scale"),
     ({"columns": 16, "rows": 16, "pixel_scale": 16}, "parameters.columns"),
     ({"truncation": 0}, "parameters.truncation"), ({"truncation": 1.5}, "parameters.truncation"),
     ({"truncation": "low"}, "parameters.truncation")],
)
def test_bad_parameters(client: Client, params: dict[str, Any], field: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.generate("image.tiles", params)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(info.value)]

"""image.texture on the shipped model: families, seams, sizes, walks and bad parameters."""

from __future__ import annotations

import io
import itertools
from typing import Any

import grpc
import numpy as np
import pytest
from PIL import Image

from museforge.client import Client, field_violations
from museforge.plugins.image import texture
from museforge.plugins.image.texture_data import FAMILIES as TRAINING_FAMILIES
from museforge.plugins.image.texture_quality import seam_ratio


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.float32) / 255.0


def make(client: Client, seed: int = 1, count: int = 1, **params: Any) -> list[np.ndarray]:
    reply = client.generate("image.texture", params, seed=seed, count=count)
    return [pixels(a.data) for a in reply.artifacts]


def test_serving_constants_match_the_trained_model() -> None:
    from museforge.plugins.image import texture_gan

    assert texture.FAMILIES == TRAINING_FAMILIES
    assert (texture.SCALE, texture.NOISE_CHANNELS) == (texture_gan.SCALE,
                                                       texture_gan.NOISE_CHANNELS)


@pytest.mark.parametrize("family", texture.FAMILIES)
def test_tileable_output_has_no_seam(client: Client, family: str) -> None:
    [tile] = make(client, family=family, width=256, height=192, tileable=True)
    assert tile.shape == (192, 256)
    assert seam_ratio(tile) <= 1.25


def test_large_tileable_texture(client: Client) -> None:
    [tile] = make(client, seed=5, family="brick", width=1024, height=1024, tileable=True)
    assert tile.shape == (1024, 1024) and seam_ratio(tile) <= 1.25
    assert tile.std() > 0.05  # a texture, not a flat field


def test_non_tileable_output_is_not_periodic(client: Client) -> None:
    [tileable] = make(client, family="gravel", width=256, height=256, tileable=True)
    [plain] = make(client, family="gravel", width=256, height=256, tileable=False)
    assert seam_ratio(plain) > seam_ratio(tileable)


def test_walk_between_two_seeds(client: Client) -> None:
    frames = make(client, seed=3, family="grass", width=128, height=128, interpolate_to=9,
                  frames=5)
    assert len(frames) == 5
    [start] = make(client, seed=3, family="grass", width=128, height=128)
    [end] = make(client, seed=9, family="grass", width=128, height=128)
    np.testing.assert_array_equal(frames[0], start)
    np.testing.assert_allclose(frames[-1], end, atol=1 / 255)
    steps = [np.abs(b - a).mean() for a, b in itertools.pairwise(frames)]
    assert max(steps) < np.abs(end - start).mean()


@pytest.mark.parametrize(
    ("params", "field"),
    [({"width": 100}, "parameters.width"), ({"height": 4096}, "parameters.height"),
     ({"width": 32}, "parameters.width"), ({"family": "marble"}, "parameters.family"),
     ({"tileable": "sometimes"}, "parameters.tileable"), ({"frames": 1000, "interpolate_to": 2},
                                                          "parameters.frames"),
     ({"width": 2048, "height": 2048, "interpolate_to": 2, "frames": 8}, "parameters.width")],
)
def test_bad_parameters(client: Client, params: dict[str, Any], field: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.generate("image.texture", params)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(info.value)]

"""image.icons on the shipped model: categories, alpha, sizes, walks and bad parameters."""

from __future__ import annotations

import io
import itertools
from typing import Any

import grpc
import numpy as np
import pytest
from PIL import Image

from museforge.client import Client, field_violations
from museforge.plugins.image import icons, icons_data
from museforge.plugins.image.icons_quality import soft_alpha_share


def rgba(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGBA"
    return np.asarray(image, dtype=np.float32) / 255.0


def make(client: Client, seed: int = 1, count: int = 1, **params: Any) -> list[np.ndarray]:
    reply = client.generate("image.icons", params, seed=seed, count=count)
    return [rgba(a.data) for a in reply.artifacts]


def test_serving_constants_match_the_trained_model() -> None:
    from museforge.plugins.image import icons_gan

    assert (icons.CATEGORIES, icons.ICON) == (icons_data.CATEGORIES, icons_data.ICON)
    assert icons.LATENT_DIM == icons_gan.LATENT_DIM


def test_icons_are_64_pixel_rgba_on_a_transparent_ground(client: Client) -> None:
    images = make(client, seed=4, count=8, category="smileys")
    for image in images:
        assert image.shape == (64, 64, 4)
        corners = image[[0, 0, -1, -1], [0, -1, 0, -1], 3]
        assert corners.max() < 0.1  # the ground shows through around the drawing
        assert image[24:40, 24:40, 3].mean() > 0.5  # and the middle is drawn
    assert soft_alpha_share(np.stack(images)) < 0.3


def test_larger_sizes_resample_without_dark_fringes(client: Client) -> None:
    [small] = make(client, seed=5, category="food")
    [big] = make(client, seed=5, category="food", size=256)
    assert big.shape == (256, 256, 4)
    big_image = Image.fromarray((big * 255).astype(np.uint8), "RGBA")
    down = np.asarray(big_image.resize((64, 64), Image.Resampling.BOX))
    assert np.abs(down[..., 3] / 255.0 - small[..., 3]).mean() < 0.05
    edge = (big[..., 3] > 0.05) & (big[..., 3] < 0.5)  # the blended rim keeps the colour of the shape
    solid = big[..., 3] > 0.95
    if edge.any() and solid.any():
        assert big[edge, :3].mean() > 0.5 * big[solid, :3].mean()


def test_clean_alpha_snaps_only_the_ends(client: Client) -> None:
    [clean] = make(client, seed=6, category="flags")
    [raw] = make(client, seed=6, category="flags", clean_alpha=False)
    assert soft_alpha_share(clean[None]) < soft_alpha_share(raw[None])
    mid = (raw[..., 3] > 0.2) & (raw[..., 3] < 0.8)  # the rim keeps its anti-aliasing
    assert np.abs(clean[mid, 3] - (raw[mid, 3] - 0.02) / 0.96).max() < 2 / 255


def test_enlarged_icons_have_no_haze_around_the_shape(client: Client) -> None:
    [big] = make(client, seed=7, category="smileys", size=512)
    faint = (big[..., 3] > 0) & (big[..., 3] < 9.5 / 255)  # the resize's ringing (11,204 pixels before)
    assert not faint.any(), int(faint.sum())
    [raw] = make(client, seed=7, category="smileys", size=512, clean_alpha=False)
    assert ((raw[..., 3] > 0) & (raw[..., 3] < 9.5 / 255)).sum() > 1000  # what there is to clear


def test_random_category_is_drawn_per_icon_and_reported(client: Client) -> None:
    reply = client.generate("image.icons", {"category": "random"}, seed=3, count=12)
    names = {a.metadata["x.category"] for a in reply.artifacts}
    assert names <= set(icons.CATEGORIES) and len(names) > 1


def test_walk_between_two_seeds(client: Client) -> None:
    frames = make(client, seed=3, category="animals", interpolate_to=9, frames=5)
    [start] = make(client, seed=3, category="animals")
    [end] = make(client, seed=9, category="animals")
    assert len(frames) == 5
    np.testing.assert_array_equal(frames[0], start)
    np.testing.assert_allclose(frames[-1], end, atol=1 / 255)
    steps = [np.abs(b - a).mean() for a, b in itertools.pairwise(frames)]
    assert max(steps) < np.abs(end - start).mean()


@pytest.mark.parametrize(
    ("params", "field"),
    [({"category": "dragons"}, "parameters.category"), ({"size": 32}, "parameters.size"),
     ({"size": 1024}, "parameters.size"), ({"category": 3}, "parameters.category"),
     ({"size": 512, "interpolate_to": 2, "frames": 64}, "parameters.size"),
     ({"clean_alpha": "maybe"}, "parameters.clean_alpha")],
)
def test_bad_parameters(client: Client, params: dict[str, Any], field: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.generate("image.icons", params, count=2)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(info.value)]


def test_jpeg_is_not_offered_for_transparent_icons(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.generate("image.icons", {}, fmt="jpeg")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

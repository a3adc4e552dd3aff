"""image.icons' colour under transparent pixels: filtering the straight-alpha PNG leaves no dark rim."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR
import pytest
from PIL import Image

from museforge import Variations, latents
from museforge.client import Client
from museforge.engine.colour import srgb_to_linear
from museforge.plugins.image import icons
from tests.models import served_version, shipped_session

FRINGE_CATEGORIES = ("smileys", "food", "flags", "objects")
ROUNDING = 0.5 / 255 + 1e-4  # one 8-bit rounding, plus float noise between two ONNX sessions


def png(client: Client, seed: int, **params: Any) -> np.ndarray:
    [artifact] = client.generate("image.icons", params, seed=seed, count=1).artifacts
    return np.asarray(Image.open(io.BytesIO(artifact.data)), dtype=np.float64) / 255.0


def mip_fringe(image: np.ndarray) -> float:
    """How far, in 8-bit levels, a 2x box mip of the straight RGBA composited over white lands from
    the same mip of premultiplied colour (what a compositor should see)."""
    h, w = image.shape[:2]

    def down(x: np.ndarray) -> np.ndarray:
        return x.reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))

    colour, alpha = image[..., :3], image[..., 3:]
    straight = down(colour) * down(alpha) + 1.0 - down(alpha)
    premultiplied = down(colour * alpha) + 1.0 - down(alpha)
    return float(np.abs(straight - premultiplied).max() * 255)


# Measured on seed 21 (docs/models.md): 46 and 10 levels while hidden colour was black, 12 and
# 3.3 with it bled (what is left is the rim's own colour varying within a 2x2 block).
@pytest.mark.parametrize(("size", "limit"), [(64, 16), (256, 6)])
def test_a_mip_of_the_png_over_white_has_no_dark_rim(client: Client, size: int, limit: float) -> None:
    fringe = max(mip_fringe(png(client, 21, category=c, size=size)) for c in FRINGE_CATEGORIES)
    assert fringe < limit, fringe


def model_icon(seed: int, category: str) -> np.ndarray:
    """The shipped model's straight RGBA for one icon, drawn as the server draws it."""
    [(_, z)] = list(latents((icons.LATENT_DIM,), seed, 1, Variations()))
    session = shipped_session(served_version(icons.MODELS_DIR))
    image = session.run(["image"], {"z": z[None].astype(np.float32),
                                    "category": icons.categories_for(seed, 1, category)})[0][0]
    return np.clip(np.transpose(image, (1, 2, 0)), 0.0, 1.0).astype(np.float64)


@pytest.mark.parametrize("category", ["smileys", "flags"])
def test_alpha_and_visible_colour_are_clean_alphas_and_hidden_colour_is_the_nearest(
        client: Client, category: str) -> None:
    raw = model_icon(21, category)
    alpha = np.clip((raw[..., 3] - icons.ALPHA_SNAP) / (1 - 2 * icons.ALPHA_SNAP), 0.0, 1.0)
    served = png(client, 21, category=category)
    assert np.abs(served[..., 3] - alpha).max() <= ROUNDING
    visible = alpha > 0
    assert np.abs(served[visible, :3] - raw[visible, :3]).max() <= ROUNDING
    # Under alpha 0: the colour of a nearest pixel with alpha above 0 (any, if several tie).
    seen = np.argwhere(visible)
    hidden = np.argwhere(~visible)
    assert len(hidden) > 500
    distances = ((hidden[:, None, :] - seen[None, :, :]) ** 2).sum(axis=2)
    nearest = distances == distances.min(axis=1, keepdims=True)
    for (y, x), ties in zip(hidden, nearest, strict=True):
        candidates = raw[seen[ties, 0], seen[ties, 1], :3]
        assert np.abs(candidates - served[y, x, :3]).max(axis=1).min() <= ROUNDING, (y, x)


def test_exr_stays_premultiplied_clean_alpha(client: Client, tmp_path: Path) -> None:
    raw = model_icon(21, "food")
    alpha = np.clip((raw[..., 3] - icons.ALPHA_SNAP) / (1 - 2 * icons.ALPHA_SNAP), 0.0, 1.0)
    [artifact] = client.generate("image.icons", {"category": "food"}, seed=21, fmt="exr").artifacts
    path = tmp_path / artifact.filename
    path.write_bytes(artifact.data)
    with OpenEXR.File(str(path)) as exr:
        pixels = np.array(exr.channels()["RGBA"].pixels, dtype=np.float64)
    assert (alpha == 0).sum() > 500
    np.testing.assert_allclose(pixels[..., 3], alpha, atol=1e-4)
    # Colour x alpha: 0 wherever alpha is, whatever colour the PNG keeps there.
    np.testing.assert_allclose(pixels[..., :3], srgb_to_linear(raw[..., :3]) * alpha[..., None], atol=1e-4)

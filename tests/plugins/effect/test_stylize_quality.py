"""effect.stylize on the shipped model: style carried, structure kept, tiles seamless."""

from __future__ import annotations

import io
from typing import Any, get_args

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from museforge.client import Client
from museforge.plugins.effect.photo_data import photo_split
from museforge.plugins.effect.stylize import GRID, HALO, MODELS, STYLES, StylizeParams
from museforge.plugins.effect.stylize_quality import (
    RATIO_TARGET,
    SSIM_TARGET,
    STYLE_NAMES,
    evaluate_stylizer,
    gram_matrices,
    session_stylizer,
    style_distance,
    style_grams,
)
from museforge.runtime.manifest import Manifest
from tests.models import shipped_session

VERSION = MODELS / "stylize" / "1"


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return shipped_session(VERSION)


@pytest.fixture(scope="module")
def figures(session: ort.InferenceSession) -> dict[str, Any]:
    split = photo_split()
    return evaluate_stylizer(session_stylizer(session), split.held_out, split.held_out_names)


def test_serving_names_the_networks_styles() -> None:
    assert STYLES == STYLE_NAMES
    assert get_args(StylizeParams.model_fields["style"].annotation) == STYLE_NAMES


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_style_is_carried_and_structure_kept_on_average(figures: dict[str, Any], style: str) -> None:
    summary = figures["styles"][style]
    assert summary["ratio"] <= RATIO_TARGET and summary["ssim"] >= SSIM_TARGET, summary
    for photo, per in summary["per_photo"].items():
        assert per["ratio"] <= RATIO_TARGET, (photo, per)


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_every_held_out_photo_meets_both_targets(figures: dict[str, Any], style: str) -> None:
    for photo, per in figures["styles"][style]["per_photo"].items():
        assert per["ratio"] <= RATIO_TARGET, (photo, per)
        assert per["ssim"] >= SSIM_TARGET, (photo, per)


def test_manifest_records_the_figures_the_model_gives(figures: dict[str, Any]) -> None:
    manifest = Manifest.read(VERSION)
    assert manifest.name == "effect.stylize" and not manifest.quick
    assert manifest.dataset["fingerprint"] == photo_split().fingerprint
    for style in STYLE_NAMES:
        recorded, measured = manifest.metrics["styles"][style], figures["styles"][style]
        for key in ("ratio", "check_ratio", "ssim"):
            assert recorded[key] == pytest.approx(measured[key], rel=1e-4, abs=1e-5), (style, key)
    assert (VERSION / "model.onnx").stat().st_size < 4_000_000


def test_halo_covers_the_receptive_field(session: ort.InferenceSession) -> None:
    """Changing one pixel changes nothing further than HALO away: tiles are exact."""
    from skimage import data

    crop = np.asarray(data.rocket())[100:228, 200:328].astype(np.float32) / 255  # held out
    base = np.ascontiguousarray(crop.transpose(2, 0, 1)[None])
    poked = base.copy()
    poked[0, :, 64, 64] = 1.0 - poked[0, :, 64, 64]
    reaches = []
    for index in range(len(STYLE_NAMES)):
        style = np.array([index], np.int64)
        a = session.run(["result"], {"image": base, "style": style})[0][0]
        b = session.run(["result"], {"image": poked, "style": style})[0][0]
        rows, cols = np.nonzero(np.abs(a - b).max(axis=0) > 1e-6)
        reaches.append(int(max(np.abs(rows - 64).max(), np.abs(cols - 64).max())))
    # 64 is on the network's 4-px grid; pixels off it may reach GRID - 1 further.
    assert max(reaches) <= HALO - (GRID - 1), reaches
    assert max(reaches) > 0, reaches  # the convolutions do see the neighbourhood


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)), np.float64)


def test_served_result_is_the_same_whatever_the_tile(client: Client) -> None:
    from skimage import data

    frame = np.asarray(data.rocket())[:150, :211]  # held out; odd width: the grid padding
    params = {"style": "ihc"}
    small = client.apply_effect("effect.stylize", [png(frame)], {**params, "tile": 64})
    whole = client.apply_effect("effect.stylize", [png(frame)], {**params, "tile": 1024})
    a, b = decode(small.artifacts[0].data) / 255, decode(whole.artifacts[0].data) / 255
    assert a.shape == b.shape == (150, 211, 3)
    assert np.abs(a - b).max() <= 1 / 255 + 1e-9  # tiles and the whole frame agree but for rounding
    # ...and the tiled result carries the style (judged like the held-out figures).
    target = style_grams()[STYLE_NAMES.index("ihc")]
    before = style_distance(gram_matrices(frame.astype(np.float32) / 255), target)
    assert style_distance(gram_matrices(a), target) < 0.75 * before


def test_strength_blends_with_the_input(client: Client) -> None:
    from skimage import data

    frame = np.asarray(data.coffee())[100:164, 200:296]
    zero = client.apply_effect("effect.stylize", [png(frame)], {"style": "gravel", "strength": 0.0})
    half = client.apply_effect("effect.stylize", [png(frame)], {"style": "gravel", "strength": 0.5})
    full = client.apply_effect("effect.stylize", [png(frame)], {"style": "gravel"})
    z, h, f = (decode(r.artifacts[0].data) for r in (zero, half, full))
    assert np.abs(z - frame).max() <= 1
    assert np.abs(f - frame).mean() > 10
    assert np.abs(h - (f + frame) / 2).max() <= 1.5

"""effect.interpolate: the shipped model beats the linear blend on held-out photographs, served end to end."""

from __future__ import annotations

import io
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from museforge.client import Client, field_violations
from museforge.engine.colour import linear_to_srgb, srgb_to_linear
from museforge.engine.effect import Picture
from museforge.engine.generator import Media
from museforge.plugins.effect import interpolate_data as data
from museforge.plugins.effect.interpolate import MODEL, MODELS, InterpolateParams, apply
from museforge.plugins.effect.interpolate_quality import (
    evaluate_interpolator,
    interpolate_frames,
    session_infer,
)
from museforge.plugins.effect.photo_data import photo_split
from museforge.runtime.manifest import Manifest
from tests.models import shipped_session
from tests.plugins.effect.sessions import SessionContext

MODEL_DIR = MODELS / "interpolate" / "1"


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return shipped_session(MODEL_DIR)


@pytest.fixture(scope="module")
def figures(session: ort.InferenceSession) -> dict[str, Any]:
    split = photo_split()
    return evaluate_interpolator(session_infer(session), split.held_out, split.held_out_names)


def test_beats_the_linear_blend_by_two_decibels_on_held_out_photographs(figures: dict[str, Any]) -> None:
    assert figures["psnr_gain_db"] >= 2.0, figures
    assert figures["ssim_model"] > figures["ssim_blend"], figures
    for name, per_photo in figures["per_photo"].items():
        assert per_photo["psnr_model"] > per_photo["psnr_blend"], name
    quarter = figures["t_0.25"]  # frames=3: the off-centre times are better than blending too
    assert quarter["psnr_model"] > quarter["psnr_blend"] + 1.0, quarter


def test_manifest_records_the_figures_the_model_gives(figures: dict[str, Any]) -> None:
    manifest = Manifest.read(MODEL_DIR)
    assert manifest.name == MODEL and not manifest.quick
    assert manifest.dataset["fingerprint"] == photo_split().fingerprint
    for key in ("psnr_model", "psnr_blend", "ssim_model", "ssim_blend", "psnr_gain_db"):
        assert manifest.metrics[key] == pytest.approx(figures[key], abs=1e-3), key
    assert (MODEL_DIR / "model.onnx").stat().st_size < 4_000_000


def test_tiles_of_64_match_the_whole_frame(session: ort.InferenceSession) -> None:
    split = photo_split()
    infer = session_infer(session)
    for photo, name in zip(split.held_out, split.held_out_names, strict=True):
        [tri] = data.held_out_triplets([photo], [name], per_photo=1)
        whole = interpolate_frames(infer, tri.first, tri.second, 0.5, tile=1024)
        tiled = interpolate_frames(infer, tri.first, tri.second, 0.5, tile=64)
        diff = np.abs(whole - tiled)
        # The halo covers the motion and the matcher's blocks; the cross-fade hides what the
        # U-Net sees beyond. What remains is at the frame border, where content entering
        # the frame is a guess either way (mirrored context differs slightly).
        assert diff.mean() < TILE_MEAN_DIFF, name
        assert diff[16:-16, 16:-16].max() < TILE_INTERIOR_MAX_DIFF, name


TILE_MEAN_DIFF = 5e-4
TILE_INTERIOR_MAX_DIFF = 0.05


def run(session: ort.InferenceSession, first: Picture, second: Picture, frames: int) -> list[Media]:
    ctx = SessionContext(MODEL, session)
    events = apply(ctx, InterpolateParams(frames=frames, tile=256), [first, second], 0)
    return [e for e in events if isinstance(e, Media)]


def held_out_pair() -> data.Triplet:
    split = photo_split()
    return data.held_out_triplets(split.held_out[1:2], split.held_out_names[1:2], per_photo=1,
                                  size=96)[0]


def test_alpha_is_blended_and_grey_stays_grey(session: ort.InferenceSession) -> None:
    tri = held_out_pair()
    h, w = tri.first.shape[:2]
    grey0, grey1 = tri.first.mean(axis=2, keepdims=True), tri.second.mean(axis=2, keepdims=True)
    alpha0, alpha1 = np.ones((h, w), np.float32), np.zeros((h, w), np.float32)
    media = run(session, Picture(grey0, alpha0, "png"), Picture(grey1, alpha1, "png"), frames=3)
    assert [m.index for m in media] == [0, 1, 2]
    assert [m.metadata["t"] for m in media] == ["0.25", "0.5", "0.75"]
    for m, t in zip(media, (0.25, 0.5, 0.75), strict=True):
        assert m.data.shape == (h, w, 2)  # grey + alpha
        np.testing.assert_allclose(m.data[:, :, 1], 1.0 - t, atol=1e-6)


def test_linear_frames_stay_linear_with_one_peak_for_both(session: ort.InferenceSession) -> None:
    tri = held_out_pair()
    first, second = srgb_to_linear(tri.first) * 4.0, srgb_to_linear(tri.second) * 4.0
    second[:8, :8] = 20.0  # a highlight in the second frame raises the pair's common peak
    [linear] = run(session, Picture(first, None, "exr", True), Picture(second, None, "exr", True), 1)
    assert linear.colorspace == "linear" and linear.data.max() > 1.5
    # The network sees both frames scaled by one peak and sRGB-encoded: the linear result is
    # the display result on exactly those pictures, decoded and scaled back.
    peak = max(float(np.percentile(np.concatenate([first.ravel(), second.ravel()]), 99.9)), 1.0)
    shown = [np.clip(linear_to_srgb(f / peak), 0.0, 1.0) for f in (first, second)]
    [display] = run(session, Picture(shown[0], None, "png"), Picture(shown[1], None, "png"), 1)
    np.testing.assert_allclose(linear.data, srgb_to_linear(display.data) * np.float32(peak),
                               rtol=1e-4, atol=1e-5)


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_served_in_between_frames_are_numbered_with_their_times(client: Client) -> None:
    tri = held_out_pair()
    first, second = (np.round(f * 255).astype(np.uint8) for f in (tri.first, tri.second))
    reply = client.apply_effect(MODEL, [("a.png", png(first)), ("b.png", png(second))], {"frames": 2})
    assert [a.index for a in reply.artifacts] == [0, 1]
    assert [a.metadata["x.t"] for a in reply.artifacts] == [f"{1 / 3:.6g}", f"{2 / 3:.6g}"]
    middle = np.asarray(Image.open(io.BytesIO(reply.artifacts[0].data)))
    assert middle.shape == first.shape


def test_frames_of_different_sizes_are_refused(client: Client) -> None:
    frame = png(np.zeros((40, 60, 3), np.uint8))
    other = png(np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(grpc.RpcError) as caught:
        client.apply_effect(MODEL, [frame, other])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(field_violations(caught.value))["inputs[1]"] == \
        "must be the same size as inputs[0] (50x40 vs 60x40)"

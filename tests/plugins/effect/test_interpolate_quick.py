"""effect.interpolate without the shipped model: quick recipe, input checks, triplet synthesis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from museforge.engine.effect import Picture
from museforge.plugins.effect import interpolate_data as data
from museforge.plugins.effect.interpolate import EFFECT, InterpolateParams, check, frame_times, network_pair
from tests.models import quick_export


def test_quick_export(tmp_path: Path) -> None:
    out = tmp_path / "interpolate"
    manifest = quick_export("effect.interpolate", out)
    assert [t.name for t in manifest.inputs] == ["image", "image2", "t"]
    assert (out / "1" / "model.onnx").stat().st_size < 4_000_000
    # Held-out figures for the model and the linear blend, side by side, at t = 1/2 and 1/4.
    assert {"psnr_model", "psnr_blend", "ssim_model", "ssim_blend", "psnr_gain_db"} <= set(manifest.metrics)
    assert set(manifest.metrics["per_photo"]) == {"skimage:coffee", "skimage:rocket", "sklearn:flower.jpg"}
    assert "psnr_blend" in manifest.metrics["t_0.25"]


def picture(h: int, w: int, channels: int = 3, linear: bool = False, fmt: str = "png") -> Picture:
    return Picture(np.zeros((h, w, channels), np.float32), None, fmt, linear)


def test_check_names_the_second_input_when_the_frames_do_not_match() -> None:
    params = InterpolateParams()
    assert check(params, [picture(40, 60), picture(40, 60)]) == []
    assert check(params, [picture(40, 60), picture(30, 60)]) == [
        ("inputs[1]", "must be the same size as inputs[0] (60x30 vs 60x40)")]
    assert check(params, [picture(40, 60), picture(40, 60, channels=1)]) == [
        ("inputs[1]", "must have the same channels as inputs[0] (grey vs RGB)")]
    [(field, problem)] = check(params, [picture(40, 60, linear=True, fmt="exr"), picture(40, 60)])
    assert field == "inputs[1]" and "scene-linear" in problem and "display-referred" in problem
    assert (EFFECT.min_inputs, EFFECT.max_inputs) == (2, 2)


def test_frames_are_evenly_spaced_and_bounded() -> None:
    assert frame_times(1) == [0.5]
    assert frame_times(3) == [0.25, 0.5, 0.75]
    with pytest.raises(ValueError):
        InterpolateParams(frames=16)
    with pytest.raises(ValueError):
        InterpolateParams(frames=0)


def test_a_linear_pair_shares_one_peak() -> None:
    dim = np.full((8, 8, 3), 0.5, np.float32)
    bright = dim.copy()
    bright[:4] = 8.0  # highlights in the second frame only
    pair, peak = network_pair(Picture(dim, None, "exr", True), Picture(bright, None, "exr", True))
    assert peak == pytest.approx(8.0)
    # The first frame is encoded with the pair's peak, not its own (which would be 1).
    assert pair[:3].max() < 0.5


def test_held_out_triplets_are_deterministic_and_use_the_declared_motion() -> None:
    photo = np.random.default_rng(1).random((320, 320, 3)).astype(np.float32)
    a = data.held_out_triplets([photo], ["noise"], per_photo=2)
    b = data.held_out_triplets([photo], ["noise"], per_photo=2)
    assert [t.motion for t in a] == [t.motion for t in b]
    np.testing.assert_array_equal(a[1].middle, b[1].middle)
    for tri in a:
        assert abs(tri.motion.shift_y) <= data.MAX_SHIFT and abs(tri.motion.zoom) <= data.MAX_ZOOM
        assert abs(tri.motion.rotation) <= data.MAX_ROTATION


def test_true_flow_maps_the_middle_frame_onto_the_outer_frames() -> None:
    yy, xx = np.mgrid[0:96, 0:96].astype(np.float32)
    photo = (0.5 + 0.25 * np.stack([np.sin(xx / 7 + c) * np.cos(yy / 9 - c) for c in range(3)], axis=2))
    big = np.pad(photo, ((40, 40), (40, 40), (0, 0)), mode="reflect")
    motion = data.Motion(shift_y=6.0, shift_x=-5.0, zoom=0.02, rotation=1.5, base_y=0.3, base_x=0.7,
                         pivot_y=30.0, pivot_x=-20.0)
    tri = data.make_triplet(big, 64, motion, 0.3)
    inner = (slice(8, -8), slice(8, -8))
    gy, gx = np.mgrid[0:64, 0:64].astype(np.float64)
    for frame, to in ((tri.first, 0.0), (tri.second, 1.0)):
        flow = data.true_flow(64, motion, 0.3, to)
        warped = data.sample_cubic(frame, gy + flow[0], gx + flow[1])
        # Only the second resampling differs: far below the blend's error.
        assert np.abs(warped - tri.middle)[inner].mean() < 0.1 * np.abs(frame - tri.middle)[inner].mean()

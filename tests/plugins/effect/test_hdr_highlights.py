"""Scene-linear highlights beyond what the networks see (above the frame's peak, below 0) come
back from every image effect: a sun glint in an EXR plate is not clipped to the peak."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import OpenEXR
import pytest

from museforge.client import Client


def exr(colour: np.ndarray) -> bytes:
    handle, path = tempfile.mkstemp(suffix=".exr")
    os.close(handle)
    try:
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                     {c: np.ascontiguousarray(colour[:, :, i]) for i, c in enumerate("RGB")}).write(path)
        with open(path, "rb") as written:
            return written.read()
    finally:
        os.unlink(path)


def read(data: bytes) -> np.ndarray:
    handle, path = tempfile.mkstemp(suffix=".exr")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        with OpenEXR.File(path) as image:
            channels = image.channels()
            if "RGB" in channels:  # the bindings group R, G and B as one
                return np.asarray(channels["RGB"].pixels, np.float32)
            return np.stack([np.asarray(channels[c].pixels, np.float32) for c in "RGB"], axis=2)
    finally:
        os.unlink(path)


@pytest.fixture(scope="module")
def plate() -> np.ndarray:
    colour = np.full((96, 128, 3), 0.2, np.float32)
    colour[40:42, 40:42] = 50.0  # a glint: 4 of 12,288 pixels, beyond the 99.9th percentile
    colour[60, 60] = -0.05  # out of gamut
    return colour


def test_an_unchanged_stylize_gives_the_plate_back_highlights_and_all(client: Client,
                                                                      plate: np.ndarray) -> None:
    [artifact] = client.apply_effect("effect.stylize", [("plate.exr", exr(plate))], {"strength": 0}).artifacts
    assert artifact.format == "exr"
    np.testing.assert_allclose(read(artifact.data), plate, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(("effect", "parameters", "scale"), [
    ("effect.upscale", {"scale": 2}, 2), ("effect.denoise", {"sigma": 5}, 1), ("effect.restore", {}, 1)])
def test_a_glint_keeps_its_brightness_through_each_effect(client: Client, plate: np.ndarray, effect: str,
                                                          parameters: dict[str, int], scale: int) -> None:
    [artifact] = client.apply_effect(effect, [("plate.exr", exr(plate))], parameters).artifacts
    result = read(artifact.data)
    glint = result[40 * scale:42 * scale, 40 * scale:42 * scale]
    assert glint.mean() > 25 and glint.max() >= 45, glint  # clipped to the peak (1.0) before
    assert abs(float(np.median(result)) - 0.2) < 0.03  # the rest much as it was


def test_an_in_between_frame_keeps_a_glint_both_frames_have(client: Client, plate: np.ndarray) -> None:
    frames = [("a.exr", exr(plate)), ("b.exr", exr(plate))]
    [artifact] = client.apply_effect("effect.interpolate", frames, {"frames": 1}).artifacts
    result = read(artifact.data)
    assert result[40:42, 40:42].mean() > 40 and result[60, 60].max() < 0


def test_a_bright_window_does_not_brighten_the_rest_of_a_stylized_plate(client: Client) -> None:
    """Stylize paints its own brightness: scaled by a window's peak, the rest of the plate went in
    nearly black and came out at the style's brightness times that peak (13x too bright)."""
    rng = np.random.default_rng(0)
    plate = rng.uniform(0.02, 0.6, (96, 128, 3)).astype(np.float32)
    lit = plate.copy()
    lit[:24, :32] = 16.0  # a window: 6% of the frame, far past the 99.9th percentile's reach
    rest = np.ones((96, 128), bool)
    rest[:24, :32] = False
    medians = []
    for picture in (plate, lit):
        [artifact] = client.apply_effect("effect.stylize", [("plate.exr", exr(picture))], {}).artifacts
        result = read(artifact.data)
        medians.append(float(np.median(result[rest])))
        if picture is lit:
            assert result[:24, :32].min() > 10.0  # the window stays far brighter than the rest
    assert abs(medians[1] - medians[0]) < 0.05 * medians[0], medians
    assert 0.5 < medians[0] / float(np.median(plate)) < 1.5, medians


@pytest.mark.parametrize(("effect", "parameters"), [("effect.denoise", {"sigma": 5}), ("effect.restore", {})])
def test_a_plate_shot_stops_under_comes_back_as_the_same_picture_darker(client: Client, effect: str,
                                                                       parameters: dict[str, int]) -> None:
    """Dim plates are brought up to the network's range too: held at a peak of 1.0, a plate 8 stops
    under reached the network as its bottom twentieth, and denoise clipped 60% of it to black."""
    from skimage import data

    photo = np.asarray(data.astronaut()[::4, ::4], np.float32) / 255.0
    linear = np.where(photo <= 0.04045, photo / 12.92, ((photo + 0.055) / 1.055) ** 2.4).astype(np.float32)
    results = []
    for stops in (0, 8):
        plate = exr(linear * 2.0**-stops)
        [artifact] = client.apply_effect(effect, [("plate.exr", plate)], parameters).artifacts
        results.append(read(artifact.data) * 2.0**stops)
    exposed, under = results
    assert float(np.mean(under == 0)) < 1.5 * float(np.mean(exposed == 0)) + 0.01
    np.testing.assert_allclose(under, exposed, rtol=1e-3, atol=1e-4)

"""OpenEXR alpha and damage through a real server: EXR colour is premultiplied, PNG's straight,
and each is converted on the way in and out; damaged files are refused saying so."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping

import grpc
import numpy as np
import OpenEXR
import pytest
from PIL import Image

from museforge.client import Client, field_violations
from museforge.engine.codecs.decoders import decode_image
from tests.core import hostile_images as hostile

STILL = {"strength": 0}  # stylize at strength 0 gives its input back


def exr(channels: Mapping[str, np.ndarray], compression: object = OpenEXR.ZIP_COMPRESSION) -> bytes:
    handle, path = tempfile.mkstemp(suffix=".exr")
    os.close(handle)
    try:
        planes = {name: np.ascontiguousarray(plane, np.float32) for name, plane in channels.items()}
        OpenEXR.File({"compression": compression, "type": OpenEXR.scanlineimage}, planes).write(path)
        with open(path, "rb") as written:
            return written.read()
    finally:
        os.unlink(path)


def exr_planes(data: bytes) -> dict[str, np.ndarray]:
    """The stored (premultiplied) channels, as any compositor reads them."""
    handle, path = tempfile.mkstemp(suffix=".exr")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        with OpenEXR.File(path, separate_channels=True) as image:
            return {n: np.asarray(c.pixels, np.float32) for n, c in image.channels().items()}
    finally:
        os.unlink(path)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def stylize(client: Client, data: bytes, fmt: str) -> bytes:
    [artifact] = client.apply_effect("effect.stylize", [("in", data)], STILL, fmt=fmt).artifacts
    assert artifact.format == fmt
    return artifact.data


def refused(client: Client, data: bytes) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        client.apply_effect("effect.stylize", [("in.exr", data)], STILL)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return dict(field_violations(caught.value))["inputs[0]"]


def test_premultiplied_white_at_half_alpha_is_white_in_a_png(client: Client) -> None:
    half = np.full((16, 16), 0.5, np.float32)
    out = np.asarray(Image.open(io.BytesIO(stylize(client, exr(dict.fromkeys("RGBA", half)), "png"))))
    assert (out == [255, 255, 255, 128]).all()


def test_colour_under_a_transparent_png_pixel_adds_no_light_in_an_exr(client: Client) -> None:
    pixels = np.zeros((16, 16, 4), np.uint8)
    pixels[..., 0] = 255  # red everywhere, hidden by alpha 0 ...
    pixels[8:, :, 3] = 128  # ... but in the lower half, half covered
    planes = exr_planes(stylize(client, png(pixels), "exr"))
    assert (planes["R"][:8] == 0).all() and (planes["A"][:8] == 0).all()
    np.testing.assert_allclose(planes["R"][8:], 128 / 255, rtol=1e-3)  # linear 1.0 x alpha
    np.testing.assert_allclose(planes["A"][8:], 128 / 255, rtol=1e-6)


def test_an_rgba_exr_comes_back_as_it_was(client: Client) -> None:
    rng = np.random.default_rng(7)
    alpha = rng.uniform(0.05, 1.0, (32, 48)).astype(np.float32)
    alpha[:4] = 0.0  # emission: light with no coverage, kept through the round trip
    straight = rng.uniform(0.0, 3.0, (32, 48, 3)).astype(np.float32)
    planes = {c: straight[:, :, i] * np.where(alpha > 0, alpha, 1.0) for i, c in enumerate("RGB")}
    planes["A"] = alpha
    out = exr_planes(stylize(client, exr(planes), "exr"))
    for name, plane in planes.items():
        np.testing.assert_allclose(out[name], plane, rtol=2e-3, atol=1e-4)


def test_a_png_with_alpha_comes_back_unchanged(client: Client) -> None:
    pixels = np.random.default_rng(8).integers(0, 256, (24, 40, 4), dtype=np.uint8)
    pixels[:3, :, 3] = 0  # colour under alpha 0 is the PNG's own: kept
    out = np.asarray(Image.open(io.BytesIO(stylize(client, png(pixels), "png"))))
    np.testing.assert_array_equal(out, pixels)


def test_alpha_that_is_not_a_number_is_made_finite(client: Client) -> None:
    alpha = np.full((16, 16), 0.5, np.float32)
    alpha[0, :4] = [np.nan, np.inf, -np.inf, 2.0]
    colour = np.full((16, 16), 0.25, np.float32)
    data = exr({"R": colour, "G": colour, "B": colour, "A": alpha})
    picture = decode_image(data)
    assert picture.alpha is not None
    np.testing.assert_array_equal(picture.alpha[0, :5], [0.0, 1.0, 0.0, 1.0, 0.5])
    out = exr_planes(stylize(client, data, "exr"))
    np.testing.assert_array_equal(out["A"][0, :5], [0.0, 1.0, 0.0, 1.0, 0.5])


def smooth_exr() -> bytes:
    y, x = np.mgrid[0:64, 0:64] / 64.0
    return exr({c: (x * y * (i + 1)).astype(np.float32) for i, c in enumerate("RGBA")})


def test_a_truncated_exr_says_so(client: Client) -> None:
    data = smooth_exr()
    message = refused(client, data[:len(data) * 2 // 3])
    assert "the OpenEXR file is truncated or its pixel data is damaged" in message
    assert "part index" not in message and tempfile.gettempdir() not in message


def test_an_exr_with_damaged_pixel_data_says_so(client: Client) -> None:
    data = smooth_exr()
    middle = len(data) // 2  # well past the header: inside a compressed chunk
    damaged = data[:middle] + b"\x55" * 64 + data[middle + 64:]
    message = refused(client, damaged)
    assert "the OpenEXR file is truncated or its pixel data is damaged" in message
    assert tempfile.gettempdir() not in message


def test_the_first_part_with_colour_is_read(client: Client) -> None:
    depth = np.full((8, 8), 3.0, np.float32)
    rgba = {c: np.full((8, 8), 0.25, np.float32) for c in "RGBA"}
    data = hostile.exr([("depth", {"Z": depth}, (8, 8)), ("beauty", rgba, (8, 8))])
    picture = decode_image(data)
    assert picture.alpha is not None and picture.channels == 3
    np.testing.assert_allclose(picture.colour, 1.0)  # 0.25 premultiplied by 0.25
    out = exr_planes(stylize(client, data, "exr"))
    np.testing.assert_allclose(out["R"], 0.25, rtol=2e-3)


def test_an_exr_without_colour_in_any_part_names_each_part(client: Client) -> None:
    plane = np.ones((8, 8), np.float32)
    data = hostile.exr([("depth", {"Z": plane}, (8, 8)), ("normals", {"N.x": plane}, (8, 8))])
    message = refused(client, data)
    assert "part 0 ('depth') has ['Z']" in message and "part 1 ('normals') has ['N.x']" in message

"""The PNG writer: pixels and text survive a round trip through an independent decoder."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from museforge.engine.codecs.png_writer import write_png


@pytest.mark.parametrize(
    ("shape", "dtype", "mode"),
    [((28, 28), np.uint8, "L"), ((5, 7, 3), np.uint8, "RGB"), ((9, 4, 4), np.uint8, "RGBA"),
     ((6, 5), np.uint16, "I;16"), ((1, 1, 1), np.uint8, "L"), ((64, 33, 3), np.uint8, "RGB"),
     ((7, 6, 2), np.uint8, "LA")],
)
def test_round_trip(shape: tuple[int, ...], dtype: type, mode: str) -> None:
    rng = np.random.default_rng(sum(shape))
    pixels: np.ndarray = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    data = write_png(pixels, {"museforge": '{"seed": "1", "note": "é"}', "Software": "x"})
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.mode == mode
        np.testing.assert_array_equal(np.asarray(image).reshape(shape), pixels)
        assert image.info["museforge"] == '{"seed": "1", "note": "é"}'


def test_sixteen_bit_rgb_is_big_endian_in_the_stream() -> None:
    pixels = np.array([[[1, 2, 0x0304]]], dtype=np.uint16)
    data = write_png(pixels)
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4:idat], "big")
    raw = zlib.decompress(data[idat + 4: idat + 4 + length])
    assert raw == b"\x02" + b"\x00\x01\x00\x02\x03\x04"
    assert data[12:16] == b"IHDR" and data[24] == 16  # bit depth, after width and height


def test_same_pixels_same_bytes() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert write_png(pixels, {"a": "b"}) == write_png(pixels.copy(), {"a": "b"})


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((4, 4, 5), np.uint8), np.zeros((0, 4), np.uint8), np.zeros((4, 4), np.float32),
     np.zeros(4, np.uint8)],
)
def test_rejects_what_png_cannot_hold(pixels: np.ndarray) -> None:
    with pytest.raises(ValueError):
        write_png(pixels)

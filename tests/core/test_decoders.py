"""Input decoding: every PNG row filter at 16 bits, and the formats and failures around it."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib

import numpy as np
import pytest
from PIL import Image

from museforge.decoders import DecodeError, decode_image, sniff
from museforge.png import SIGNATURE, chunk


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filtered_png(pixels: np.ndarray, kinds: list[int], interlace: int = 0) -> bytes:
    """A 16-bit PNG whose rows use the given filter types (the reference encoder, slow and plain)."""
    h, w, channels = pixels.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = pixels.astype(">u2").view(np.uint8).reshape(h, -1).astype(int)
    bpp, out, previous = 2 * channels, bytearray(), [0] * rows.shape[1]
    for y in range(h):
        kind, row = kinds[y % len(kinds)], rows[y].tolist()
        out.append(kind)
        for x, value in enumerate(row):
            a = row[x - bpp] if x >= bpp else 0
            b, c = previous[x], previous[x - bpp] if x >= bpp else 0
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
            out.append((value - pred) % 256)
        previous = row
    header = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, interlace)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b"")
    return SIGNATURE + body


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_sixteen_bit_png_with_every_row_filter(channels: int) -> None:
    rng = np.random.default_rng(channels)
    pixels = np.cumsum(rng.integers(0, 3000, (23, 17, channels)), axis=1).astype(np.uint16)
    picture = decode_image(filtered_png(pixels, [0, 1, 2, 3, 4, 4, 3, 1]))
    assert picture.format == "png16"
    colour = pixels[:, :, : (3 if channels >= 3 else 1)]
    np.testing.assert_array_equal(np.round(picture.colour * 65535).astype(np.uint16), colour)
    if channels in (2, 4):
        assert picture.alpha is not None
        np.testing.assert_array_equal(np.round(picture.alpha * 65535).astype(np.uint16), pixels[:, :, -1])
    else:
        assert picture.alpha is None


def test_interlaced_sixteen_bit_colour_is_refused_with_a_reason() -> None:
    data = filtered_png(np.zeros((4, 4, 3), np.uint16), [0], interlace=1)
    with pytest.raises(DecodeError, match="interlaced"):
        decode_image(data)


def test_palette_png_with_transparency_becomes_rgb_plus_alpha() -> None:
    image = Image.new("P", (6, 5))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((1, 1), 1)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=0)
    picture = decode_image(buffer.getvalue())
    assert picture.colour.shape == (5, 6, 3) and picture.alpha is not None
    assert picture.alpha[1, 1] == 1.0 and picture.alpha[0, 0] == 0.0
    np.testing.assert_allclose(picture.colour[1, 1], [0, 1, 0])


def test_cmyk_jpeg_is_read_as_rgb() -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(buffer, format="JPEG")
    picture = decode_image(buffer.getvalue())
    assert picture.format == "jpeg" and picture.colour.shape == (8, 8, 3)
    assert picture.colour[4, 4, 0] > 0.9 and picture.colour[4, 4, 1] < 0.1


def test_half_float_exr_is_read_linear() -> None:
    import OpenEXR

    values = np.linspace(0, 12, 5 * 7, dtype=np.float16).reshape(5, 7)
    handle, path = tempfile.mkstemp(suffix=".exr")
    os.close(handle)
    try:
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                     {"R": values, "G": values, "B": values}).write(path)
        with open(path, "rb") as f:
            data = f.read()
    finally:
        os.unlink(path)
    assert sniff(data) == "exr"
    picture = decode_image(data)
    assert picture.linear and picture.colour.dtype == np.float32
    np.testing.assert_allclose(picture.colour[:, :, 0], values.astype(np.float32))


def test_limits_and_garbage() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200)).save(buffer, format="PNG")
    with pytest.raises(DecodeError, match="limit"):
        decode_image(buffer.getvalue(), max_pixels=300 * 199)
    assert decode_image(buffer.getvalue(), max_pixels=300 * 200).width == 300
    with pytest.raises(DecodeError, match="not accepted"):
        decode_image(buffer.getvalue(), accepted=("exr",))
    for data in (b"", b"GIF89a....", SIGNATURE + b"\x00" * 40, b"\xff\xd8\xff\xe0" + b"\x00" * 50):
        with pytest.raises(DecodeError):
            decode_image(data)

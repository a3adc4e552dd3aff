"""Input decoding: every PNG row filter at 16 bits, the formats, and hostile inputs refused cheaply."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import threading
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image

from museforge.engine.codecs import png_reader
from museforge.engine.codecs.decoders import DecodeCancelled, DecodeError, decode_image, sniff
from museforge.engine.codecs.png_writer import SIGNATURE, chunk
from tests.core import hostile_images as hostile


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


# ------------------------------------------------------------------ 16-bit PNG, bounded


def test_fast_encoder_matches_the_reference_encoder() -> None:
    for channels in (1, 2, 3, 4):
        pixels = hostile.pixels(channels, 9, 7, channels, np.uint16)
        assert hostile.png(pixels, [0, 1, 2, 3, 4, 4, 1]) == filtered_png(pixels, [0, 1, 2, 3, 4, 4, 1])


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_every_filter_across_band_seams(channels: int) -> None:
    """Rows decode in bands of ``BAND`` bytes: an image spanning several gives the same pixels."""
    width = 300
    height = png_reader.BAND // (1 + 2 * channels * width) + 7  # the second band starts mid-way
    pixels = hostile.pixels(7, height, width, channels, np.uint16)
    decoded = png_reader.decode_png16(hostile.png(pixels, [4, 3, 2, 1, 0, 3, 4, 2], level=1))
    np.testing.assert_array_equal(decoded, pixels)


def test_sixteen_bit_grey_matches_pillow_for_every_filter() -> None:
    """An independent decoder: Pillow reads 16-bit grey PNGs at full depth."""
    pixels = hostile.pixels(11, 40, 33, 1, np.uint16)
    for kind in range(5):
        data = hostile.png(pixels, [kind])
        with Image.open(io.BytesIO(data)) as image:
            expected = np.asarray(image, np.uint16)
        np.testing.assert_array_equal(png_reader.decode_png16(data)[:, :, 0], expected)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (hostile.png_file(1, 1, 16, 2, hostile.zeros_deflate(8, 1 << 20)), "larger than its header"),
        (hostile.png_file(64, 64, 16, 6, zlib.compress(bytes(64 * 513))[:-30]), "truncated"),
        (hostile.png_file(64, 64, 16, 6, zlib.compress(bytes(64 * 513 - 1))), "truncated"),
        (hostile.png_file(2, 2, 16, 2, zlib.compress(b"\x05" + bytes(12) + b"\x00" + bytes(12))),
         "unknown row filter 5"),
        (hostile.png_file(2, 2, 16, 2, b"\x78\x9c\xff\xff\xff"), "corrupt"),
        (hostile.png_file(2, 2, 16, 2, zlib.compress(bytes(26)))[:-20], "truncated"),
    ],
)
def test_hostile_sixteen_bit_pngs_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_image(data)


def test_png_structure_is_checked_before_any_decoding() -> None:
    good = hostile.png(hostile.pixels(1, 4, 4, 3), [1])
    broken_crc = good[:-5] + bytes([good[-5] ^ 1]) + good[-4:]
    with pytest.raises(DecodeError, match="checksum"):
        decode_image(broken_crc)
    idat = good.index(b"IDAT") - 4
    flood = good[:idat] + chunk(b"tEXt", b"") * 200 + good[idat:]  # 12-byte chunks: no encoder's
    with pytest.raises(DecodeError, match="too many chunks"):
        decode_image(flood)


class CancelAfter(threading.Event):
    """An event that reads as set from its ``checks``-th check on: where decoding stops."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_decoding_stops_between_steps_when_cancelled() -> None:
    width = 600
    pixels = hostile.pixels(5, png_reader.BAND // (1 + 8 * width) + 3, width, 4, np.uint16)
    data = hostile.png(pixels, [4, 1], level=1)
    counted = CancelAfter(10**9)
    assert decode_image(data, cancel=counted).format == "png16"
    checks_made = 10**9 - counted.left
    assert checks_made > 20  # one per inflate step and per band, not just one at the start
    for checks in (1, checks_made // 2, checks_made - 1):  # before, mid-inflate, the last band
        cancel = CancelAfter(checks)
        with pytest.raises(DecodeCancelled):
            decode_image(data, cancel=cancel)
        assert cancel.left == -1  # stopped at the first check that saw it set
    for other in (hostile.jpeg(hostile.pixels(1, 8, 8, 3)), hostile.webp(hostile.pixels(1, 8, 8, 3)),
                  hostile.png(hostile.pixels(1, 8, 8, 3), [0])):
        with pytest.raises(DecodeCancelled):
            decode_image(other, cancel=CancelAfter(1))


# ------------------------------------------------------------------ JPEG and WebP


JPEG_OPTIONS = [("RGB", {"subsampling": s, "progressive": p}) for s in (0, 1, 2) for p in (False, True)]
JPEG_OPTIONS += [("L", {}), ("L", {"progressive": True}), ("CMYK", {}), ("RGB", {"optimize": True}),
                 ("RGB", {"restart_marker_blocks": 3}), ("RGB", {"quality": 100}), ("RGB", {"quality": 1})]


@pytest.mark.parametrize(("mode", "options"), JPEG_OPTIONS)
def test_valid_jpegs_decode_exactly_as_pillow_decodes_them(mode: str, options: dict[str, Any]) -> None:
    data = hostile.jpeg(hostile.pixels(3, 45, 61, 3), mode, **options)
    with Image.open(io.BytesIO(data)) as image:
        expected = np.asarray(image.convert("L" if mode == "L" else "RGB"))
    picture = decode_image(data)
    np.testing.assert_array_equal(np.round(picture.colour * 255).astype(np.uint8).reshape(expected.shape),
                                  expected)


def test_a_uniform_jpeg_is_not_mistaken_for_a_short_one() -> None:
    """Two bits a block (DC and end-of-block codes) is as small as a Huffman JPEG gets."""
    for progressive in (False, True):
        data = hostile.jpeg(np.full((1080, 1920, 3), 90, np.uint8), optimize=True, progressive=progressive)
        assert decode_image(data).width == 1920


@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_and_short_jpegs_are_refused(progressive: bool) -> None:
    data = hostile.jpeg(hostile.pixels(2, 256, 256, 3), progressive=progressive)
    with pytest.raises(DecodeError, match="truncated or corrupt"):
        decode_image(data[: int(len(data) * 0.4)] + b"\xff\xd9")
    with pytest.raises(DecodeError, match="truncated"):
        decode_image(data[: int(len(data) * 0.4)])
    huge = bytearray(hostile.jpeg(hostile.pixels(2, 16, 16, 3), progressive=progressive))
    sof = huge.index(b"\xff\xc2" if progressive else b"\xff\xc0")
    huge[sof + 5:sof + 9] = struct.pack(">HH", 4320, 7680)
    with pytest.raises(DecodeError, match="cannot hold a 7680x4320 picture"):
        decode_image(bytes(huge), max_pixels=7680 * 4320)


@pytest.mark.parametrize("lossless", [False, True])
def test_truncated_webp_is_refused(lossless: bool) -> None:
    data = bytearray(hostile.webp(hostile.pixels(4, 120, 160, 3), lossless))
    assert decode_image(bytes(data)).width == 160
    cut = data[: int(len(data) * 0.4) // 2 * 2]
    with pytest.raises(DecodeError):
        decode_image(bytes(cut))
    cut[4:8], cut[16:20] = struct.pack("<I", len(cut) - 8), struct.pack("<I", len(cut) - 20)
    with pytest.raises(DecodeError):  # sizes rewritten to match: still missing data
        decode_image(bytes(cut))


# ------------------------------------------------------------------ OpenEXR


def _plane(h: int, w: int) -> np.ndarray:
    return np.ones((h, w), np.float16)


def test_every_exr_part_and_channel_counts() -> None:
    rgb = {"R": _plane(8, 8), "G": _plane(8, 8), "B": _plane(8, 8)}
    two = hostile.exr([("main", rgb, (8, 8)), ("extra", {"Y": _plane(40, 40)}, (40, 40))])
    assert decode_image(two, max_pixels=1600).width == 8  # part 0 is the picture
    with pytest.raises(DecodeError, match="exr part 1 is 40x40"):
        decode_image(two, max_pixels=1599)
    many = {**rgb, **{f"aov{i:03d}": _plane(8, 8) for i in range(40)}}  # 43 channels x 64 pixels
    data = hostile.exr([("main", many, (8, 8))])
    assert decode_image(data, max_pixels=4 * 43 * 64 // 4).width == 8
    with pytest.raises(DecodeError, match="samples"):
        decode_image(data, max_pixels=600)


def test_exr_channel_flood_is_refused_before_openexr_parses_it() -> None:
    flood = {f"c{i:04d}": _plane(1, 1) for i in range(1100)}
    with pytest.raises(DecodeError, match="more than 1024 channels"):
        decode_image(hostile.exr([("main", flood, (1, 1))]))


def test_exr_errors_never_show_a_server_path() -> None:
    data = hostile.exr([("main", {"R": _plane(4, 4), "G": _plane(4, 4), "B": _plane(4, 4)}, (4, 4))])
    bad_type = data.replace(b"B\0\x01\0\0\0", b"B\0\x09\0\0\0", 1)  # an unknown pixel type
    with pytest.raises(DecodeError) as caught:
        decode_image(bad_type)
    assert tempfile.gettempdir() not in str(caught.value) and ".exr" not in str(caught.value)
    deep = bytearray(data)
    deep[5] |= 0x08  # the "non-image" (deep data) flag
    with pytest.raises(DecodeError, match="deep"):
        decode_image(bytes(deep))

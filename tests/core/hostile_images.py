"""Image inputs for decoder tests: exact encoders and structure-aware Hypothesis mutations.

The PNG encoder filters rows with numpy (every PNG filter type, chosen per row), so tests
can make large 16-bit files quickly; `tests/core/test_decoders.py` checks it against a
plain byte-by-byte reference. The strategies take a valid PNG (8 or 16 bits, every filter
type), JPEG, WebP or OpenEXR file and damage its structure the way an attacker would:
header fields, chunk and segment lengths, filter bytes, compressed bytes, checksums,
frame sizes, truncation.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import tempfile
import zlib
from typing import Any

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from museforge.engine.codecs.png_writer import SIGNATURE, chunk

COLOUR = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type


def filter_rows(raw: np.ndarray, bpp: int, kinds: list[int]) -> np.ndarray:
    """PNG-filter [H, row bytes] uint8 with row y using ``kinds[y % len(kinds)]``; adds the filter byte."""
    x = raw.astype(np.int16)
    a, b, c = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    a[:, bpp:], b[1:], c[1:, bpp:] = x[:, :-bpp], x[:-1], x[:-1, :-bpp]
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    predictions = np.stack([np.zeros_like(x), a, b, (a + b) // 2, paeth])
    rows = np.arange(len(raw))
    kind = np.asarray(kinds)[rows % len(kinds)]
    out = ((x - predictions[kind, rows]) % 256).astype(np.uint8)
    return np.concatenate([kind[:, None].astype(np.uint8), out], axis=1)


def png_file(width: int, height: int, depth: int, colour: int, idat: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png(pixels: np.ndarray, kinds: list[int], level: int = 6) -> bytes:
    """HxWxC uint8 or uint16 pixels as a PNG whose rows use the given filter types."""
    h, w, channels = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    raw = pixels.astype(">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(h, -1)
    filtered = filter_rows(raw, channels * depth // 8, kinds)
    return png_file(w, h, depth, COLOUR[channels], zlib.compress(filtered.tobytes(), level))


def zeros_deflate(blocks: int, block: int = 1 << 24) -> bytes:
    """A valid zlib stream of ``blocks`` x ``block`` zero bytes, without compressing them all.

    A full flush ends a deflate block on a byte boundary with no reference across it, so
    the same block repeated is valid; the Adler-32 of n zeros is known in closed form.
    """
    co = zlib.compressobj(9)
    first = co.compress(bytes(block)) + co.flush(zlib.Z_FULL_FLUSH)
    adler = ((blocks * block % 65521) << 16) | 1
    return first[:2] + first[2:] * blocks + b"\x03\x00" + struct.pack(">I", adler)


def jpeg(pixels: np.ndarray, mode: str = "RGB", **options: Any) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(out, format="JPEG", **options)
    return out.getvalue()


def webp(pixels: np.ndarray, lossless: bool = False) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="WEBP", lossless=lossless, quality=80)
    return out.getvalue()


def exr(parts: list[tuple[str, dict[str, np.ndarray], tuple[int, int]]]) -> bytes:
    """An OpenEXR file of (name, channels, (width, height)) parts, ZIP-compressed, scanline."""
    import OpenEXR

    def header(w: int, h: int) -> dict[str, Any]:
        window = (np.array([0, 0], np.int32), np.array([w - 1, h - 1], np.int32))
        shown = (np.array([0, 0], np.int32), np.array([7, 7], np.int32))  # shared by every part
        return {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage,
                "dataWindow": window, "displayWindow": shown}

    built = [OpenEXR.Part(header(*size), channels, name) for name, channels, size in parts]
    handle, path = tempfile.mkstemp(suffix=".exr")
    os.close(handle)
    try:
        OpenEXR.File(built).write(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def pixels(seed: int, h: int, w: int, channels: int, dtype: type = np.uint8) -> np.ndarray:
    """Smooth gradients plus noise, so every filter type has something to predict."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 37 + y * 91)[:, :, None] * np.arange(1, channels + 1)
    return ((base + rng.integers(0, top // 16 + 1, (h, w, channels))) % (top + 1)).astype(dtype)


# ------------------------------------------------------------------ mutations


def _chunks(data: bytes) -> list[list[bytes]]:
    pos, found = 8, []
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        found.append([data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]])
        pos += 12 + length
    return found


@st.composite
def mutated_png(draw: st.DrawFn) -> bytes:
    depth, channels = draw(st.sampled_from([(8, 1), (8, 3), (8, 4), (16, 1), (16, 2), (16, 3), (16, 4)]))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    kinds = draw(st.lists(st.integers(0, 4), min_size=1, max_size=5))
    image = pixels(h * w, h, w, channels, np.uint16 if depth == 16 else np.uint8)
    raw = image.astype(">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(h, -1)
    filtered = filter_rows(raw, channels * depth // 8, kinds)
    if draw(st.booleans()):  # a filter byte outside 0-4, or another valid one
        filtered[draw(st.integers(0, h - 1)), 0] = draw(st.integers(0, 255))
    stream = bytearray(zlib.compress(filtered.tobytes()))
    for _ in range(draw(st.integers(0, 2))):  # damage inside the deflate stream
        stream[draw(st.integers(0, len(stream) - 1))] = draw(st.integers(0, 255))
    stream = stream[:draw(st.integers(0, len(stream)))] if draw(st.booleans()) else stream
    header = bytearray(struct.pack(">IIBBBBB", w, h, depth, COLOUR[channels], 0, 0, 0))
    if draw(st.booleans()):  # one IHDR field: width, height, depth, colour, methods, interlace
        field = draw(st.integers(0, 6))
        at, size = ((0, 4), (4, 4), (8, 1), (9, 1), (10, 1), (11, 1), (12, 1))[field]
        value = draw(st.one_of(st.integers(0, 2**(8 * size) - 1), st.sampled_from([0, 1, 2, 16, 2**31])))
        header[at:at + size] = (value % 2**(8 * size)).to_bytes(size, "big")
    pieces = draw(st.integers(1, 4))
    step = max(1, -(-len(stream) // pieces))
    chunks = [[b"IHDR", bytes(header)]] + [[b"IDAT", bytes(stream[i:i + step])]
                                           for i in range(0, max(len(stream), 1), step)]
    chunks.append([b"IEND", b""])
    return _png_with_damage(draw, chunks)


def _png_with_damage(draw: st.DrawFn, chunks: list[list[bytes]]) -> bytes:
    """Serialise chunks, maybe with a wrong length field, a bad CRC or a chunk dropped."""
    def sometimes() -> bool:
        return draw(st.integers(0, 3)) == 0

    if sometimes() and len(chunks) > 2:
        del chunks[draw(st.integers(1, len(chunks) - 1))]
    bad_length = (draw(st.integers(0, len(chunks) - 1)), draw(st.integers(0, 2**32 - 1))) \
        if sometimes() else None
    bad_crc = draw(st.integers(0, len(chunks) - 1)) if sometimes() else None
    out = bytearray(SIGNATURE)
    for index, (kind, body) in enumerate(chunks):
        length = bad_length[1] if bad_length and bad_length[0] == index else len(body)
        crc = zlib.crc32(kind + body) ^ (0xFFFF if bad_crc == index else 0)
        out += struct.pack(">I", length) + kind + body + struct.pack(">I", crc)
    return bytes(out[:draw(st.integers(8, len(out)))] if sometimes() else out)


@st.composite
def mutated_jpeg(draw: st.DrawFn) -> bytes:
    mode = draw(st.sampled_from(["L", "RGB", "CMYK"]))
    size = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    options = {"progressive": draw(st.booleans()), "quality": draw(st.integers(1, 95))}
    if mode == "RGB":
        options["subsampling"] = draw(st.integers(0, 2))
    data = bytearray(jpeg(pixels(size[0], *size, 3), mode, **options))
    kind = draw(st.sampled_from(["sof", "cut", "flip", "length", "none"]))
    if kind == "sof":  # the frame's declared height and width, or a sampling factor
        sof = data.index(b"\xff\xc2" if options["progressive"] else b"\xff\xc0")
        at = draw(st.sampled_from([5, 7, 11]))
        value = draw(st.one_of(st.integers(0, 65535), st.sampled_from([0, 1, 4320, 65535])))
        data[sof + at:sof + at + 2] = value.to_bytes(2, "big")
    elif kind == "cut":
        data = data[:draw(st.integers(3, len(data)))] + (b"\xff\xd9" if draw(st.booleans()) else b"")
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(2, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "length":  # a marker segment's length field
        markers = [i for i in range(2, len(data) - 4) if data[i] == 0xFF and data[i + 1] in
                   (0xDB, 0xC4, 0xC0, 0xC2, 0xDA, 0xE0)]
        at = draw(st.sampled_from(markers))
        data[at + 2:at + 4] = draw(st.integers(0, 65535)).to_bytes(2, "big")
    return bytes(data)


@st.composite
def mutated_webp(draw: st.DrawFn) -> bytes:
    side = (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    data = bytearray(webp(pixels(side[0], *side, 3), draw(st.booleans())))
    kind = draw(st.sampled_from(["cut", "cut-fixed", "flip", "size"]))
    if kind.startswith("cut"):
        data = data[:draw(st.integers(12, len(data)))]
        if kind == "cut-fixed" and len(data) >= 20:  # sizes rewritten to match the cut
            data += b"\0" * (len(data) % 2)
            data[4:8], data[16:20] = struct.pack("<I", len(data) - 8), struct.pack("<I", len(data) - 20)
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(12, len(data) - 1))] = draw(st.integers(0, 255))
    elif len(data) > 30:  # the frame header's dimensions
        data[26:30] = draw(st.binary(min_size=4, max_size=4))
    return bytes(data)


@functools.cache
def exr_seeds() -> tuple[bytes, ...]:
    plane = pixels(3, 9, 11, 1, np.uint16)[:, :, 0].astype(np.float32) / 4096
    return (
        exr([("main", {"R": plane, "G": plane, "B": plane}, (11, 9))]),
        exr([("main", {"Y": plane.astype(np.float16), "A": plane.astype(np.float16)}, (11, 9))]),
        exr([("main", {"R": plane, "G": plane, "B": plane}, (11, 9)), ("extra", {"Z": plane}, (11, 9))]),
    )


@st.composite
def mutated_exr(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(exr_seeds())))
    kind = draw(st.sampled_from(["window", "flip", "cut", "flags"]))
    if kind == "window":  # a data window coordinate, the work a header declares
        at = data.index(b"dataWindow\0box2i\0") + 21 + 4 * draw(st.integers(0, 3))
        data[at:at + 4] = struct.pack("<i", draw(st.integers(-(2**31), 2**31 - 1)))
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(4, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "cut":
        data = data[:draw(st.integers(4, len(data)))]
    else:
        data[5] ^= draw(st.sampled_from([0x02, 0x04, 0x08, 0x10]))
    return bytes(data)


hostile_images = st.one_of(mutated_png(), mutated_jpeg(), mutated_webp(), mutated_exr())

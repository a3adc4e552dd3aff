"""PNG header parsing and a 16-bit decoder (Pillow reads 16-bit colour PNGs as 8-bit).

Film and texture pipelines hand over 16-bit RGB(A) PNGs; truncating them to 8 bits
would throw away exactly what they were saved for. Unfiltering is the only sequential
part of PNG decoding: each byte depends on its left, upper and upper-left neighbours.
Pixels on one anti-diagonal (row + column constant) never depend on each other, so
they are reconstructed together, one numpy step per diagonal.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (no palette here)


class PngError(ValueError):
    """The bytes are not a PNG this reader can decode; the message says why."""


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    depth: int
    colour_type: int
    interlaced: bool


def read_header(data: bytes) -> PngHeader:
    if not data.startswith(SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        raise PngError("not a PNG file (bad signature or missing IHDR)")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if width == 0 or height == 0:
        raise PngError(f"PNG has a zero size ({width}x{height})")
    return PngHeader(width, height, depth, colour, interlace == 1)


def _chunks(data: bytes) -> bytes:
    """The concatenated IDAT payload."""
    pos, idat = len(SIGNATURE), []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise PngError("PNG is truncated")
        if kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if not idat:
        raise PngError("PNG has no image data")
    return b"".join(idat)


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    a16, b16, c16 = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
    p = a16 + b16 - c16
    pa, pb, pc = np.abs(p - a16), np.abs(p - b16), np.abs(p - c16)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def unfilter(filtered: np.ndarray, bpp: int) -> np.ndarray:
    """Undo PNG row filters: ``filtered`` is [H, 1 + row bytes] uint8; returns [H, row bytes]."""
    kinds = filtered[:, 0]
    if kinds.max(initial=0) > 4:
        raise PngError(f"PNG uses an unknown row filter {int(kinds.max())}")
    rows = filtered[:, 1:]
    if np.all(kinds == 0):
        return rows.copy()
    if np.all(kinds == 2):
        return np.cumsum(rows, axis=0, dtype=np.uint8)
    height, width = rows.shape[0], rows.shape[1] // bpp
    # One zero row above and one zero pixel to the left: PNG's "outside the image" value.
    recon = np.zeros((height + 1, width + 1, bpp), np.uint8)
    src = rows.reshape(height, width, bpp)
    for d in range(height + width - 1):
        r = np.arange(max(0, d - width + 1), min(height, d + 1))
        p = d - r
        x = src[r, p].astype(np.uint16)
        a, b, c = recon[r + 1, p], recon[r, p + 1], recon[r, p]
        kind = kinds[r][:, None]
        pred = np.select(
            [kind == 1, kind == 2, kind == 3, kind == 4],
            [a, b, ((a.astype(np.uint16) + b) // 2).astype(np.uint8), _paeth(a, b, c)],
            default=0,
        )
        recon[r + 1, p + 1] = (x + pred).astype(np.uint8)
    return recon[1:, 1:].reshape(height, width * bpp)


def decode_png16(data: bytes) -> np.ndarray:
    """A 16-bit, non-interlaced grey/grey+alpha/RGB/RGBA PNG as HxWxC uint16."""
    header = read_header(data)
    if header.depth != 16 or header.colour_type not in CHANNELS:
        raise PngError("decode_png16 reads 16-bit grey, grey+alpha, RGB or RGBA PNGs only")
    if header.interlaced:
        raise PngError("interlaced (Adam7) 16-bit PNGs are not supported; save without interlacing")
    channels = CHANNELS[header.colour_type]
    bpp = 2 * channels
    row_bytes = header.width * bpp
    try:
        raw = zlib.decompress(_chunks(data))
    except zlib.error as exc:
        raise PngError(f"PNG image data is corrupt: {exc}") from exc
    if len(raw) != header.height * (row_bytes + 1):
        raise PngError("PNG image data has the wrong length for its header")
    rows = unfilter(np.frombuffer(raw, np.uint8).reshape(header.height, row_bytes + 1), bpp)
    return rows.view(">u2").astype(np.uint16).reshape(header.height, header.width, channels)

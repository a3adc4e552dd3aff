"""PNG header parsing and a 16-bit decoder (Pillow reads 16-bit colour PNGs as 8-bit).

Film and texture pipelines hand over 16-bit RGB(A) PNGs; truncating them to 8 bits
would throw away exactly what they were saved for. Every step is bounded by the size the
header declares, before the work is done:

* chunks are walked once, CRCs checked; at most one chunk per KiB of file (plus 64), so
  the walk costs a few ns a byte, like the inflate;
* the image data is inflated as a stream in steps of at most ``STEP`` bytes, and refused
  as soon as it grows past ``height * (1 + row bytes)``; a stream that ends early or is
  corrupt is refused too;
* rows are unfiltered in C by Pillow's PNG row decoder. Average and Paeth filters are
  sequential along a row (each byte needs its reconstructed left neighbour), so no numpy
  formulation is both exact and bounded in steps for a 1 x 500,000 image. Pillow
  unfilters with the right bytes per pixel but keeps one byte of each 16-bit sample, so
  RGB(A) bands of rows are decoded twice, keeping the high bytes then the low ones (grey
  and grey+alpha match 8-bit layouts with the same bytes per pixel: once). A band starts
  with a copy of the previous band's last row (filter None), so Up, Average and Paeth
  see the right row above.

``cancel`` is checked between inflate steps and between bands.
"""

from __future__ import annotations

import struct
import threading
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (no palette here)
STEP = 1 << 20  # inflated bytes per step: the grain of the size cap and of cancellation
PIECE = 1 << 16  # compressed bytes fed per call, so unconsumed input is never re-copied whole
BAND = 4 << 20  # filtered bytes unfiltered per Pillow call
# bytes per pixel -> Pillow (mode, rawmode) passes. Two passes keep the high then the low
# byte of each sample; one pass keeps every byte, high and low interleaved.
PASSES: dict[int, tuple[tuple[str, str], ...]] = {
    2: (("LA", "LA"),),
    4: (("RGBA", "RGBA"),),
    6: (("RGB", "RGB;16B"), ("RGB", "RGB;16L")),
    8: (("RGBA", "RGBA;16B"), ("RGBA", "RGBA;16L")),
}


class PngError(ValueError):
    """The bytes are not a PNG this reader can decode; the message says why."""


class PngCancelled(PngError):
    """Decoding stopped because the caller's cancel event was set."""


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    depth: int
    colour_type: int
    interlaced: bool


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise PngCancelled("decoding the PNG was cancelled")


def read_header(data: bytes) -> PngHeader:
    if not data.startswith(SIGNATURE) or len(data) < 33 or data[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise PngError("not a PNG file (bad signature or missing IHDR)")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if width == 0 or height == 0:  # named first: the most useful thing to tell about such a file
        raise PngError(f"PNG has a zero size ({width}x{height})")
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        raise PngError("PNG header is corrupt (IHDR checksum mismatch)")
    return PngHeader(width, height, depth, colour, interlace == 1)


def animated(kind: str, frames: int) -> str:
    """Why an animation is refused where one picture is taken, and what to send instead."""
    return (f"animated {kind} ({frames:,} frames): an image input is one picture; send the frames as "
            f"separate images (a frame sequence, or a job over a folder of frames), or a video")


def idat_chunks(data: bytes, cancel: threading.Event | None = None) -> list[memoryview]:
    """The IDAT payloads, in order, with every chunk's CRC checked up to IEND."""
    view, pos = memoryview(data), len(SIGNATURE)
    idat: list[memoryview] = []
    limit = 64 + len(data) // 1024  # encoders write few, large chunks (libpng: 8 KiB); a flood is refused
    for count in range(limit + 1):
        if pos == len(data) and idat:  # ends cleanly after its chunks, without IEND: tolerated
            break
        if pos + 8 > len(data):
            raise PngError("PNG is truncated")
        if count == limit:
            raise PngError("PNG has too many chunks for its size")
        if count % 4096 == 0:
            _check_cancel(cancel)
        length, kind = struct.unpack(">I4s", view[pos:pos + 8])
        end = pos + 8 + length
        if length > 0x7FFFFFFF or end + 4 > len(data):
            raise PngError("PNG is truncated")
        if zlib.crc32(view[pos + 4:end]) != struct.unpack(">I", view[end:end + 4])[0]:
            raise PngError(f"PNG chunk {kind.decode('latin-1')!r} is corrupt (checksum mismatch)")
        if kind == b"IDAT":
            idat.append(view[pos + 8:end])
        elif kind == b"acTL" and length >= 4:
            frames = struct.unpack(">I", view[pos + 8:pos + 12])[0]
            if frames > 1:  # the rest would be dropped without a word: a still is its first frame
                raise PngError(animated("PNG", frames))
        elif kind == b"IEND":
            break
        pos = end + 4
    if not idat:
        raise PngError("PNG has no image data")
    return idat


def inflate(chunks: list[memoryview], expected: int, cancel: threading.Event | None = None) -> np.ndarray:
    """Exactly ``expected`` inflated bytes, or PngError as soon as the stream says otherwise."""
    out = np.empty(expected, np.uint8)  # untouched pages cost nothing until written
    stream, filled = zlib.decompressobj(), 0
    try:
        for body in chunks:
            for start in range(0, len(body), PIECE):
                pending: bytes | memoryview = body[start:start + PIECE]
                while pending and not stream.eof:
                    _check_cancel(cancel)
                    part = stream.decompress(pending, min(STEP, expected - filled + 1))
                    if filled + len(part) > expected:
                        raise PngError("PNG image data is larger than its header declares")
                    out[filled:filled + len(part)] = np.frombuffer(part, np.uint8)
                    filled += len(part)
                    pending = stream.unconsumed_tail
    except zlib.error as exc:
        raise PngError(f"PNG image data is corrupt: {exc}") from exc
    if not stream.eof or filled != expected:
        raise PngError("PNG image data is truncated (shorter than its header declares)")
    return out


def _band(filtered: np.ndarray, above: np.ndarray | None, channels: int) -> np.ndarray:
    """Unfilter rows [n, 1 + row bytes] under the reconstructed row ``above`` (zeros if None).

    Returns [n, width, channels] uint16.
    """
    if above is not None:
        first = np.zeros((1, filtered.shape[1]), np.uint8)  # filter None: the row as it is
        first[0, 1:] = above.astype(">u2").view(np.uint8).reshape(-1)
        filtered = np.concatenate([first, filtered])
    height, width = filtered.shape[0], (filtered.shape[1] - 1) // (2 * channels)
    stored = zlib.compress(np.ascontiguousarray(filtered).data, 0)  # Pillow's row decoder reads zlib
    planes = [np.asarray(Image.frombytes(mode, (width, height), stored, "zip", rawmode))
              .reshape(height, width, -1) for mode, rawmode in PASSES[2 * channels]]
    high, low = planes if len(planes) == 2 else (planes[0][:, :, 0::2], planes[0][:, :, 1::2])
    out = high.astype(np.uint16) << 8 | low
    return out[1:] if above is not None else out


def unfilter16(filtered: np.ndarray, channels: int, cancel: threading.Event | None = None) -> np.ndarray:
    """Undo PNG row filters of 16-bit samples: [H, 1 + row bytes] uint8 -> [H, W, channels] uint16."""
    kinds = filtered[:, 0]
    if kinds.max(initial=0) > 4:
        raise PngError(f"PNG uses an unknown row filter {int(kinds.max())}")
    height, width = filtered.shape[0], (filtered.shape[1] - 1) // (2 * channels)
    if not kinds.any():
        rows = np.ascontiguousarray(filtered[:, 1:]).view(">u2")
        return rows.astype(np.uint16).reshape(height, width, channels)
    out = np.empty((height, width, channels), np.uint16)
    step = max(1, BAND // filtered.shape[1])
    for top in range(0, height, step):
        _check_cancel(cancel)
        out[top:top + step] = _band(filtered[top:top + step], out[top - 1] if top else None, channels)
    return out


def decode_png16(data: bytes, cancel: threading.Event | None = None) -> np.ndarray:
    """A 16-bit, non-interlaced grey/grey+alpha/RGB/RGBA PNG as HxWxC uint16."""
    header = read_header(data)
    if header.depth != 16 or header.colour_type not in CHANNELS:
        raise PngError("decode_png16 reads 16-bit grey, grey+alpha, RGB or RGBA PNGs only")
    if header.interlaced:
        raise PngError("interlaced (Adam7) 16-bit PNGs are not supported; save without interlacing")
    channels = CHANNELS[header.colour_type]
    bpp = 2 * channels
    row_bytes = header.width * bpp
    raw = inflate(idat_chunks(data, cancel), header.height * (row_bytes + 1), cancel)
    return unfilter16(raw.reshape(header.height, row_bytes + 1), channels, cancel)

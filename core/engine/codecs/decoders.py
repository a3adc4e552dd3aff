"""Input decoders for effects: PNG (8/16-bit), JPEG, WebP and OpenEXR, sniffed by content.

Every failure is a :class:`DecodeError` with a message fit for the caller (never a server
path). Work and memory are bounded by what the header declares, before the work is done:

* every format: width x height against ``max_pixels``, from the header;
* PNG: chunks walked and checksummed first (their count bounded by the file's size);
  16-bit colour through :mod:`museforge.engine.codecs.png_reader` (capped streaming inflate, unfiltering
  in bands), the rest through Pillow, whose row decoder stops at the declared size;
* JPEG: the markers are walked first. Huffman coding spends at least one bit per 8x8 block
  of each component, so a scan too short for the declared picture is refused before any
  decoding (a 600-byte file claiming 8K). Then libjpeg-turbo (simplejpeg) decodes the
  entropy-coded data at 1/8 scale in strict mode, where a libjpeg warning such as
  "premature end of data segment" is an error: Pillow would fill the missing blocks grey.
  The pixels still come from Pillow, so valid files decode exactly as before;
* WebP: libwebp refuses truncated or corrupt data itself;
* OpenEXR: see :mod:`museforge.engine.codecs.exr_reader` (headers walked and budgeted
  before OpenEXR parses them; colour unpremultiplied).

``cancel`` is checked between inflate steps and row bands of 16-bit PNGs and between the
stages of the other formats; once it is set, decoding raises :class:`DecodeCancelled`.
"""

from __future__ import annotations

import io
import re
import struct
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..effect import Picture
from .decode_errors import DecodeCancelled, DecodeError, TooLarge, check_cancel, check_size
from .exr_reader import decode_exr
from .png_reader import PngCancelled, PngError, animated, decode_png16, idat_chunks, read_header

DEFAULT_MAX_PIXELS = 8192 * 8192
_ORIENTATION = 0x0112  # the EXIF tag
EXR_MAGIC = b"\x76\x2f\x31\x01"
MAX_JPEG_MARKERS = 10_000  # real files have tens (a few hundred with ICC or XMP chunks)
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn (not DHT, JPG, DAC)
JPEG_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})  # can be far below a bit a block
JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # not stuffing, restart or fill
JPEG_CHECK_SPACE = {"Gray": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}  # simplejpeg's, else RGB


def sniff(data: bytes) -> str | None:
    """The input format from its first bytes: "png", "jpeg", "webp", "exr" or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(EXR_MAGIC):
        return "exr"
    return None


def _split(array: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray | None]:
    """HxW[xC] integer or float pixels -> (HxWx1|3 float32 colour, alpha or None)."""
    pixels = np.asarray(array, np.float32) / np.float32(scale)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] in (2, 4):
        return np.ascontiguousarray(pixels[:, :, :-1]), np.ascontiguousarray(pixels[:, :, -1])
    return pixels, None


def _decode_pillow(data: bytes, fmt: str, max_pixels: int, name: str,
                   cancel: threading.Event | None) -> Picture:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            check_size(opened.width, opened.height, max_pixels)
            frames = getattr(opened, "n_frames", 1)
            if frames > 1:  # an animated WebP (APNG is refused as its chunks are read)
                raise DecodeError(animated(fmt.upper() if fmt != "webp" else "WebP", frames))
            check_cancel(cancel)
            opened.load()
            image: Image.Image = opened
            # As it is shown: a phone's portrait photo (JPEG, WebP) is stored sideways with an EXIF
            # orientation, which no output format here carries on. PNG's rare eXIf is left, as the
            # 16-bit PNG decoder reads none; upright images are not copied.
            if fmt in ("jpeg", "webp") and opened.getexif().get(_ORIENTATION, 1) != 1:
                image = ImageOps.exif_transpose(opened)
    except DecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(f"cannot decode {fmt}: it declares more pixels than the limit of "
                          f"{max_pixels:,}") from exc
    except UnidentifiedImageError as exc:  # Pillow's message names a Python object, not the file
        raise DecodeError(f"cannot decode {fmt}: not a {fmt} file this server can read (damaged, or a "
                          f"variant Pillow does not support)") from exc
    except Exception as exc:  # Pillow raises many types for broken files
        raise DecodeError(f"cannot decode {fmt}: {exc}") from exc
    check_cancel(cancel)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return Picture(*_split(np.asarray(image, np.uint16), 65535.0), format="png16", name=name)
    if mode in ("P", "PA"):
        mode = "RGBA" if "transparency" in image.info or mode == "PA" else "RGB"
    elif mode in ("L", "RGB") and image.info.get("transparency") is not None:
        # A PNG tRNS colour: Pillow makes it transparent on the way to RGBA (not to LA).
        rgba = np.asarray(image.convert("RGBA"))
        array = np.ascontiguousarray(rgba[..., [0, 3]]) if mode == "L" else rgba
        return Picture(*_split(array, 255.0), format=fmt, name=name)
    elif mode in ("1", "I", "F"):
        mode = "L"
    elif mode == "CMYK" or mode == "YCbCr":
        mode = "RGB"
    if mode not in ("L", "LA", "RGB", "RGBA"):
        raise DecodeError(f"{fmt} pixel mode {image.mode!r} is not supported")
    array = np.asarray(image.convert(mode) if mode != image.mode else image)
    return Picture(*_split(array, 255.0), format=fmt, name=name)


def _decode_png(data: bytes, max_pixels: int, name: str, cancel: threading.Event | None) -> Picture:
    try:
        header = read_header(data)
        check_size(header.width, header.height, max_pixels)
        if header.depth == 16 and header.colour_type in (2, 4, 6):
            pixels = decode_png16(data, cancel)
            return Picture(*_split(pixels, 65535.0), format="png16", name=name)
        idat_chunks(data, cancel)  # structure and checksums, so Pillow's chunk loop is bounded too
    except PngCancelled as exc:
        raise DecodeCancelled(str(exc)) from exc
    except PngError as exc:
        raise DecodeError(str(exc)) from exc
    return _decode_pillow(data, "png", max_pixels, name, cancel)


@dataclass(frozen=True)
class JpegFrame:
    width: int
    height: int
    sampling: tuple[tuple[int, int], ...]  # (horizontal, vertical) per component
    arithmetic: bool

    def blocks(self) -> int:
        """8x8 blocks over all components: each costs a Huffman-coded scan at least one bit."""
        h_max, v_max = max(h for h, _ in self.sampling), max(v for _, v in self.sampling)
        return sum(_ceil(_ceil(self.width * h, h_max), 8) * _ceil(_ceil(self.height * v, v_max), 8)
                   for h, v in self.sampling)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _jpeg_frame(marker: int, segment: bytes) -> JpegFrame:
    if len(segment) < 6 or segment[5] == 0 or len(segment) < 6 + 3 * segment[5]:
        raise DecodeError("jpeg frame header is corrupt")
    height, width = struct.unpack(">HH", segment[1:5])
    sampling = tuple((b >> 4, b & 15) for b in segment[7:6 + 3 * segment[5]:3])
    if not all(1 <= h <= 4 and 1 <= v <= 4 for h, v in sampling):
        raise DecodeError("jpeg frame header is corrupt (sampling factors)")
    return JpegFrame(width, height, sampling, marker in JPEG_ARITHMETIC)


def _jpeg_structure(data: bytes) -> tuple[JpegFrame, int]:
    """The frame header and the count of entropy-coded bytes, from one walk over the markers."""
    pos, frame, entropy = 2, None, 0
    for _ in range(MAX_JPEG_MARKERS):
        if pos + 2 > len(data):
            raise DecodeError("jpeg is truncated (no end-of-image marker)")
        if data[pos] != 0xFF:
            raise DecodeError(f"jpeg is corrupt (no marker at byte {pos})")
        marker = data[pos + 1]
        if marker == 0xD9:
            break
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill, standalone
            pos += 1 if marker == 0xFF else 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if end < pos + 4 or end > len(data):
            raise DecodeError("jpeg is truncated (a marker segment runs past the end)")
        if marker in JPEG_FRAMES:
            if frame is not None:
                raise DecodeError("jpeg has more than one frame header")
            frame = _jpeg_frame(marker, data[pos + 4:end])
        pos = end
        if marker == 0xDA:
            if frame is None:
                raise DecodeError("jpeg has image data before its frame header")
            found = JPEG_NEXT_MARKER.search(data, pos)
            stop = found.start() if found else len(data)
            entropy, pos = entropy + stop - pos, stop
    else:
        raise DecodeError(f"jpeg has more than {MAX_JPEG_MARKERS} markers")
    if frame is None or entropy == 0:
        raise DecodeError("jpeg has no image data")
    return frame, entropy


def _check_jpeg(data: bytes, max_pixels: int, cancel: threading.Event | None) -> None:
    """Refuse a JPEG whose image data is missing, short or corrupt, before Pillow decodes it."""
    import simplejpeg

    frame, entropy = _jpeg_structure(data)
    check_size(frame.width, frame.height, max_pixels)
    if not frame.arithmetic and entropy * 8 < frame.blocks():
        raise DecodeError(f"jpeg is truncated or corrupt: {entropy:,} bytes of image data cannot "
                          f"hold a {frame.width}x{frame.height} picture")
    check_cancel(cancel)
    try:  # at 1/8 scale: all the entropy decoding, little of the rest
        space = JPEG_CHECK_SPACE.get(simplejpeg.decode_jpeg_header(data)[2], "RGB")
        simplejpeg.decode_jpeg(data, space, min_height=1, min_width=1, strict=True)
    except Exception as exc:  # ValueError for corrupt data; anything else is just as fatal
        raise DecodeError(f"jpeg is truncated or corrupt: {exc}") from exc


def _decode_jpeg(data: bytes, max_pixels: int, name: str, cancel: threading.Event | None) -> Picture:
    _check_jpeg(data, max_pixels, cancel)
    return _decode_pillow(data, "jpeg", max_pixels, name, cancel)


def _format_of(data: bytes, fmt: str) -> str:
    """The decoder name a sniffed input will get, from its header alone."""
    if fmt == "png" and len(data) > 24 and data[24] == 16:
        return "png16"
    return fmt


DECODERS: dict[str, Callable[[bytes, int, str, threading.Event | None], Picture]] = {
    "png": _decode_png,
    "jpeg": _decode_jpeg,
    "webp": lambda data, limit, name, cancel: _decode_pillow(data, "webp", limit, name, cancel),
    "exr": decode_exr,
}


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "",
                 accepted: tuple[str, ...] | None = None, *,
                 cancel: threading.Event | None = None, limit_of: str = "") -> Picture:
    """Decode one input image; ``accepted`` limits the formats (decoder names); ``limit_of`` says
    whose ``max_pixels`` it is when not the server's (an effect's own)."""
    if not data:
        raise DecodeError("input is empty")
    fmt = sniff(data)
    if fmt is None:
        raise DecodeError("unsupported or undecodable image: not PNG, JPEG, WebP or OpenEXR")
    if accepted is not None and _format_of(data, fmt) not in accepted:
        raise DecodeError(f"{_format_of(data, fmt)} input is not accepted here; use one of {list(accepted)}")
    check_cancel(cancel)
    try:
        picture = DECODERS[fmt](data, max_pixels, name, cancel)
    except TooLarge as exc:
        if not limit_of:
            raise
        raise TooLarge(f"{exc} ({limit_of})") from None
    if accepted is not None and picture.format not in accepted:
        raise DecodeError(f"{picture.format} input is not accepted here; use one of {list(accepted)}")
    return picture

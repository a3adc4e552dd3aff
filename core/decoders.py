"""Input decoders for effects: PNG (8/16-bit), JPEG, WebP and OpenEXR, sniffed by content.

Every failure is a :class:`DecodeError` with a message fit for the caller; sizes are
checked from the header before any pixel is decompressed, so a small file claiming a
huge image (a decompression bomb) is refused cheaply.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings

import numpy as np
from PIL import Image

from .effect import Picture
from .png_reader import PngError, decode_png16, read_header

DEFAULT_MAX_PIXELS = 8192 * 8192
EXR_MAGIC = b"\x76\x2f\x31\x01"


class DecodeError(ValueError):
    """An input that cannot be decoded (bad bytes, unsupported format, too large)."""


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


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise DecodeError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise DecodeError(f"image is {width}x{height} = {width * height:,} pixels; the limit is "
                          f"{max_pixels:,}")


def _split(array: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray | None]:
    """HxW[xC] integer or float pixels -> (HxWx1|3 float32 colour, alpha or None)."""
    pixels = np.asarray(array, np.float32) / np.float32(scale)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] in (2, 4):
        return np.ascontiguousarray(pixels[:, :, :-1]), np.ascontiguousarray(pixels[:, :, -1])
    return pixels, None


def _decode_pillow(data: bytes, fmt: str, max_pixels: int, name: str) -> Picture:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_size(image.width, image.height, max_pixels)
            image.load()
    except DecodeError:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        raise DecodeError(f"cannot decode {fmt}: {exc}") from exc
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return Picture(*_split(np.asarray(image, np.uint16), 65535.0), format="png16", name=name)
    if mode in ("P", "PA"):
        mode = "RGBA" if "transparency" in image.info or mode == "PA" else "RGB"
    elif mode in ("1", "I", "F"):
        mode = "L"
    elif mode == "CMYK" or mode == "YCbCr":
        mode = "RGB"
    if mode not in ("L", "LA", "RGB", "RGBA"):
        raise DecodeError(f"{fmt} pixel mode {image.mode!r} is not supported")
    array = np.asarray(image.convert(mode) if mode != image.mode else image)
    return Picture(*_split(array, 255.0), format=fmt, name=name)


def _decode_png(data: bytes, max_pixels: int, name: str) -> Picture:
    try:
        header = read_header(data)
    except PngError as exc:
        raise DecodeError(str(exc)) from exc
    _check_size(header.width, header.height, max_pixels)
    if header.depth == 16 and header.colour_type in (2, 4, 6):
        try:
            pixels = decode_png16(data)
        except PngError as exc:
            raise DecodeError(str(exc)) from exc
        return Picture(*_split(pixels, 65535.0), format="png16", name=name)
    return _decode_pillow(data, "png", max_pixels, name)


def _decode_exr(data: bytes, max_pixels: int, name: str) -> Picture:
    import OpenEXR  # the bindings read from a path only

    handle, path = tempfile.mkstemp(suffix=".exr")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        try:
            header = OpenEXR.File(path, header_only=True).header()
            box = header["dataWindow"]
            width, height = int(box[1][0] - box[0][0] + 1), int(box[1][1] - box[0][1] + 1)
            _check_size(width, height, max_pixels)
            channels = OpenEXR.File(path, separate_channels=True).channels()
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"cannot decode exr: {exc}") from exc
    finally:
        os.unlink(path)
    planes = {n: np.asarray(c.pixels, np.float32) for n, c in channels.items()}
    if all(k in planes for k in "RGB"):
        colour = np.stack([planes["R"], planes["G"], planes["B"]], axis=2)
    elif "Y" in planes:
        colour = planes["Y"][:, :, None]
    else:
        raise DecodeError(f"exr has channels {sorted(planes)}; expected R, G, B or Y (and A)")
    alpha = np.clip(planes["A"], 0.0, 1.0) if "A" in planes else None
    if not np.isfinite(colour).all():
        colour = np.nan_to_num(colour, nan=0.0, posinf=65504.0, neginf=0.0)
    return Picture(np.ascontiguousarray(colour), alpha, format="exr", linear=True, name=name)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "",
                 accepted: tuple[str, ...] | None = None) -> Picture:
    """Decode one input image; ``accepted`` limits the formats (decoder names)."""
    if not data:
        raise DecodeError("input is empty")
    fmt = sniff(data)
    if fmt is None:
        raise DecodeError("unsupported or undecodable image: not PNG, JPEG, WebP or OpenEXR")
    if fmt == "png":
        picture = _decode_png(data, max_pixels, name)
    elif fmt == "exr":
        picture = _decode_exr(data, max_pixels, name)
    else:
        picture = _decode_pillow(data, fmt, max_pixels, name)
    if accepted is not None and picture.format not in accepted:
        raise DecodeError(f"{picture.format} input is not accepted here; use one of {list(accepted)}")
    return picture

"""Image encoders beyond PNG: 16-bit PNG, JPEG, WebP and OpenEXR.

In the core because both generators and effects write these formats; a plugin registers
``IMAGE_ENCODERS`` through ``register_encoders``. Each embeds the provenance JSON where the
format has a place for it.
"""

from __future__ import annotations

import html
import io
import os
import re
import tempfile
from collections.abc import Mapping

import numpy as np
from PIL import Image

from ..colour import display_data, srgb_to_linear
from ..errors import FieldViolation, InvalidArgument
from ..generator import Media
from .encoders import (
    PROVENANCE_KEY,
    Encoder,
    provenance_from_text,
    provenance_json,
    quietly,
    read_png_provenance,
    to_pixels,
)
from .exr_files import exr_on_disk, fits_half, result_header
from .png_writer import write_png

JPEG_QUALITY = 92
WEBP_QUALITY = 90
# The longest side each format can hold: past it the encoder fails after the work is done.
MAX_SIDE = {"JPEG": 65500, "WebP": 16383}  # libjpeg's own limit is 65,500, not 65,535


def side_problem(fmt: str, width: int, height: int) -> str | None:
    """Why ``fmt`` cannot hold a width x height image (None: it can); checked before an effect
    runs, so a frame too wide for WebP is refused at once, not after minutes of work."""
    name = next((name for name in MAX_SIDE if name.lower() == fmt.lower()), None)
    if name is None or max(width, height) <= MAX_SIDE[name]:
        return None
    return (f"{name} holds at most {MAX_SIDE[name]:,} pixels a side; this image is "
            f"{width:,}x{height:,} (png, png16 or exr hold it)")


def _fits(pixels: np.ndarray, name: str) -> None:
    height, width = pixels.shape[:2]
    message = side_problem(name, width, height)
    if message is not None:
        raise InvalidArgument(f"format: {message}", [FieldViolation("format", message)])


def as_float(data: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1], whatever integer or float type they came in."""
    array = np.asarray(data)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def display_float(media: Media) -> np.ndarray:
    """Pixels for a display format: scene-linear media encoded to sRGB, then [0, 1]."""
    return as_float(display_data(media.data, media.colorspace))


def encode_png16(media: Media, provenance: Mapping[str, str]) -> bytes:
    pixels = np.floor(display_float(media) * 65535.0 + 0.5).astype(np.uint16)
    return write_png(pixels, {"Software": "museforge", PROVENANCE_KEY: provenance_json(provenance)})


def encode_jpeg(media: Media, provenance: Mapping[str, str]) -> bytes:
    _fits(np.asarray(media.data), "JPEG")
    buffer = io.BytesIO()
    image = Image.fromarray(to_pixels(display_data(media.data, media.colorspace)))
    if image.mode in ("RGBA", "LA"):  # JPEG has no alpha
        image = image.convert(image.mode[:-1])
    # The JPEG COM marker carries the provenance; optimize=False keeps output byte-stable.
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, comment=provenance_json(provenance))
    return buffer.getvalue()


def xmp_packet(provenance: Mapping[str, str]) -> bytes:
    text = provenance_json(provenance).replace("&", "&amp;").replace("<", "&lt;")
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:museforge="https://museforge.dev/ns/1.0/">'
        f"<museforge:provenance>{text}</museforge:provenance>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def encode_webp(media: Media, provenance: Mapping[str, str]) -> bytes:
    _fits(np.asarray(media.data), "WebP")
    buffer = io.BytesIO()
    image = Image.fromarray(to_pixels(display_data(media.data, media.colorspace)))
    if image.mode == "LA":  # WebP stores colour + alpha only
        image = image.convert("RGBA")
    image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4, xmp=xmp_packet(provenance))
    return buffer.getvalue()


def premultiply(data: np.ndarray, keep_emission: bool) -> np.ndarray:
    """Straight colour + alpha (last channel) as EXR stores it: colour x alpha. Colour under
    alpha 0 is zeroed for display-referred media (a PNG's hidden colour is no light), but kept
    for scene-linear media, where it is emission an EXR carried in (unpremultiplied as is)."""
    colour, alpha = data[:, :, :-1], data[:, :, -1:]
    product = colour * alpha
    if keep_emission:
        product = np.where(alpha > 0, product, colour)
    return np.concatenate([product, alpha], axis=2).astype(np.float32)


def encode_exr(media: Media, provenance: Mapping[str, str]) -> bytes:
    """Float32 and ZIP, or, for an effect's result over an EXR input (``media.source``), that
    input's pixel type, compression and the standard attributes still true of the result."""
    import OpenEXR  # imported here: only servers that write EXR pay for it

    data = np.asarray(media.data)
    if data.ndim == 2:
        data = data[:, :, None]
    linear = media.colorspace == "linear"
    if linear:  # already scene-linear (an EXR frame in): keep it as is
        data = data.astype(np.float32)
    else:  # display-referred: decode sRGB to linear light, alpha untouched
        data = as_float(data)
        colour = data.shape[2] - (1 if data.shape[2] in (2, 4) else 0)
        data = np.concatenate([srgb_to_linear(data[:, :, :colour]), data[:, :, colour:]], axis=2)
    if data.shape[2] in (2, 4):
        data = premultiply(data, keep_emission=linear)
    names = {1: "Y", 2: "YA", 3: "RGB", 4: "RGBA"}[data.shape[2]]
    source = media.source
    # Half in, half out, unless a value would become infinity: then float for the whole file.
    kind = np.float16 if source is not None and source.half and fits_half(data) else np.float32
    channels = {n: np.ascontiguousarray(data[:, :, i], kind) for i, n in enumerate(names)}
    header = {
        **result_header(source, data.shape[1], data.shape[0], linear),
        "type": OpenEXR.scanlineimage,
        PROVENANCE_KEY: provenance_json(provenance),
    }
    # The bindings write to a path only; a private temp file is the portable way to bytes.
    handle, path = tempfile.mkstemp(suffix=".exr")
    os.close(handle)
    try:
        OpenEXR.File(header, channels).write(path)
        with open(path, "rb") as written:
            return written.read()
    finally:
        os.unlink(path)


def read_jpeg_provenance(data: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(data)) as image:
        return provenance_from_text(image.info.get("comment") if image.format == "JPEG" else None)


XMP_PROVENANCE = re.compile(rb"<museforge:provenance>(.*?)</museforge:provenance>", re.DOTALL)


def read_webp_provenance(data: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(data)) as image:
        packet = image.info.get("xmp") if image.format == "WEBP" else None
    found = XMP_PROVENANCE.search(packet if isinstance(packet, bytes) else b"")
    return provenance_from_text(html.unescape(found.group(1).decode("utf-8", "replace")) if found else None)


def read_exr_provenance(data: bytes) -> dict[str, str]:
    if not data.startswith(b"\x76\x2f\x31\x01"):  # the OpenEXR magic number
        return {}
    import OpenEXR

    with exr_on_disk(data) as path, OpenEXR.File(path, header_only=True) as exr:
        return provenance_from_text(exr.header().get(PROVENANCE_KEY))


IMAGE_ENCODERS = (
    Encoder("png16", "image", "image/png", "png", encode_png16, quietly(read_png_provenance)),
    Encoder("jpeg", "image", "image/jpeg", "jpg", encode_jpeg, quietly(read_jpeg_provenance)),
    Encoder("webp", "image", "image/webp", "webp", encode_webp, quietly(read_webp_provenance)),
    Encoder("exr", "image", "image/x-exr", "exr", encode_exr, quietly(read_exr_provenance)),
)

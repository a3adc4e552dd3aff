"""Image formats beyond the core's PNG: 16-bit PNG, JPEG, WebP and OpenEXR.

Registered through ``register_encoders`` like a studio's own format would be. Each
embeds the provenance JSON where the format has a place for it.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Mapping

import numpy as np
from PIL import Image

from museforge import Encoder, Media
from museforge.encoders import PROVENANCE_KEY, to_pixels
from museforge.png import write_png

JPEG_QUALITY = 92
WEBP_QUALITY = 90


def as_float(data: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1], whatever integer or float type they came in."""
    array = np.asarray(data)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def provenance_json(provenance: Mapping[str, str]) -> str:
    return json.dumps(dict(provenance), sort_keys=True)


def encode_png16(media: Media, provenance: Mapping[str, str]) -> bytes:
    pixels = np.floor(as_float(media.data) * 65535.0 + 0.5).astype(np.uint16)
    return write_png(pixels, {"Software": "museforge", PROVENANCE_KEY: provenance_json(provenance)})


def encode_jpeg(media: Media, provenance: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(to_pixels(media.data))
    if image.mode == "RGBA":  # JPEG has no alpha
        image = image.convert("RGB")
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
    buffer = io.BytesIO()
    image = Image.fromarray(to_pixels(media.data))
    image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4, xmp=xmp_packet(provenance))
    return buffer.getvalue()


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted: EXR holds scene-linear light, as film expects."""
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def encode_exr(media: Media, provenance: Mapping[str, str]) -> bytes:
    import OpenEXR  # imported here: only servers that write EXR pay for it

    linear = srgb_to_linear(as_float(media.data)).astype(np.float32)
    if linear.ndim == 2:
        channels = {"Y": linear}
    else:
        names = "RGBA"[: linear.shape[2]]
        channels = {n: np.ascontiguousarray(linear[:, :, i]) for i, n in enumerate(names)}
    header = {
        "compression": OpenEXR.ZIP_COMPRESSION,
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


IMAGE_ENCODERS = (
    Encoder("png16", "image", "image/png", "png", encode_png16),
    Encoder("jpeg", "image", "image/jpeg", "jpg", encode_jpeg),
    Encoder("webp", "image", "image/webp", "webp", encode_webp),
    Encoder("exr", "image", "image/x-exr", "exr", encode_exr),
)

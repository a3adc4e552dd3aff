"""Output encoders: media in, file bytes out, with provenance embedded where the format allows."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, PngImagePlugin

from .generator import Media

PROVENANCE_KEY = "museforge"  # PNG text chunk holding the provenance JSON


@dataclass(frozen=True)
class Encoder:
    """An output format, registered through ``register_encoders``."""

    name: str  # "png"
    modality: str  # "image"
    media_type: str  # "image/png"
    extension: str  # "png"
    encode: Callable[[Media, Mapping[str, str]], bytes]


def to_pil(data: np.ndarray) -> Image.Image:
    """An image array (uint8, uint16 or float in [0, 1]) as a Pillow image."""
    array = np.asarray(data)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"image must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    if array.dtype == np.uint16 and array.ndim == 2:
        return Image.fromarray(array, mode="I;16")
    if array.dtype != np.uint8:
        # Round half up so identical floats always give identical bytes.
        array = np.floor(np.clip(array.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5)
        array = array.astype(np.uint8)
    return Image.fromarray(array)


def encode_png(media: Media, provenance: Mapping[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", f"museforge {provenance.get('museforge_version', '')}".strip())
    info.add_itxt(PROVENANCE_KEY, json.dumps(dict(provenance), sort_keys=True))
    buffer = io.BytesIO()
    # Fixed compression settings: the same pixels always give the same bytes.
    to_pil(media.data).save(buffer, format="PNG", pnginfo=info, compress_level=6)
    return buffer.getvalue()


def read_png_provenance(data: bytes) -> dict[str, str]:
    """The provenance a museforge PNG carries (empty when it has none)."""
    with Image.open(io.BytesIO(data)) as image:
        text = getattr(image, "text", {}).get(PROVENANCE_KEY)
    return dict(json.loads(text)) if text else {}


BUILTIN_ENCODERS = (
    Encoder(name="png", modality="image", media_type="image/png", extension="png",
            encode=encode_png),
)

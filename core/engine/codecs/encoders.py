"""Output encoders: media in, file bytes out, with provenance embedded where the format allows."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..colour import display_data
from ..generator import Media
from .png_writer import write_png

PROVENANCE_KEY = "museforge"  # PNG text chunk holding the provenance JSON
EXTENSION = re.compile(r"[A-Za-z0-9]+(?:[._+-][A-Za-z0-9]+)*")


@dataclass(frozen=True)
class Encoder:
    """An output format, registered through ``register_encoders``."""

    name: str  # "png"
    modality: str  # "image"
    media_type: str  # "image/png"
    extension: str  # "png"
    encode: Callable[[Media, Mapping[str, str]], bytes]
    # The provenance a file of this format carries, read back ({} when it has none, or is not one
    # of this format): what lets a file alone name the artifact (`museforge feedback rate FILE`).
    read_provenance: Callable[[bytes], dict[str, str]] | None = None

    def __post_init__(self) -> None:
        # The extension ends every reply's file name, which clients write where they are told.
        if not (isinstance(self.extension, str) and EXTENSION.fullmatch(self.extension)):
            raise ValueError(f"encoder {self.name}: extension must be letters and digits (dots, '-', "
                             f"'_' or '+' between them, e.g. 'png' or 'tar.gz'), got {self.extension!r}")


def to_pixels(data: np.ndarray) -> np.ndarray:
    """An image array (uint8, uint16 or float in [0, 1]) as uint8/uint16 pixels."""
    array = np.asarray(data)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ValueError(f"image must be HxW or HxWxC with C in 1-4, got shape {array.shape}")
    if array.dtype in (np.uint8, np.uint16):
        return array
    # Round half up so identical floats always give identical bytes.
    scaled = np.clip(array, 0.0, 1.0, dtype=np.float32) * np.float32(255.0) + np.float32(0.5)
    return np.floor(scaled).astype(np.uint8)


def provenance_json(provenance: Mapping[str, str]) -> str:
    """The provenance as every encoder embeds it: JSON with sorted keys (stable bytes)."""
    return json.dumps(dict(provenance), sort_keys=True)


def software_tag(provenance: Mapping[str, str]) -> str:
    """"museforge <version>", for a format's software / encoder field."""
    return f"museforge {provenance.get('museforge_version', '')}".strip()


def encode_png(media: Media, provenance: Mapping[str, str]) -> bytes:
    text = {"Software": software_tag(provenance), PROVENANCE_KEY: provenance_json(provenance)}
    return write_png(to_pixels(display_data(media.data, media.colorspace)), text)


def read_png_provenance(data: bytes) -> dict[str, str]:
    """The provenance a museforge PNG carries (empty when it has none)."""
    with Image.open(io.BytesIO(data)) as image:
        return provenance_from_text(getattr(image, "text", {}).get(PROVENANCE_KEY))


def provenance_from_text(text: str | bytes | None) -> dict[str, str]:
    """Provenance JSON as an encoder embedded it ({} for anything else: a foreign file's comment)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def quietly(reader: Callable[[bytes], dict[str, str]]) -> Callable[[bytes], dict[str, str]]:
    """A reader that answers {} for bytes it cannot read (another format, a damaged file)."""
    def read(data: bytes) -> dict[str, str]:
        try:
            return reader(data)
        except Exception:  # any parser's refusal of what is not its format
            return {}
    read.__name__ = getattr(reader, "__name__", "read")
    return read


BUILTIN_ENCODERS = (
    Encoder(name="png", modality="image", media_type="image/png", extension="png",
            encode=encode_png, read_provenance=quietly(read_png_provenance)),
)

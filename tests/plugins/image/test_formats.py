"""Every image format, served through the encoder hook, decodes and carries provenance."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from PIL import Image

from museforge.client import Client
from museforge.engine.colour import srgb_to_linear


def reference(client: Client) -> np.ndarray:
    png = client.generate("image.digits", {"digit": 6}, seed=12, fmt="png").artifacts[0]
    return np.asarray(Image.open(io.BytesIO(png.data)), dtype=np.float32) / 255.0


@pytest.mark.parametrize(("fmt", "media_type", "tolerance"),
                         [("png16", "image/png", 1 / 255), ("jpeg", "image/jpeg", 0.12),
                          ("webp", "image/webp", 0.12)])
def test_raster_formats(client: Client, fmt: str, media_type: str, tolerance: float) -> None:
    artifact = client.generate("image.digits", {"digit": 6}, seed=12, fmt=fmt).artifacts[0]
    assert artifact.media_type == media_type and artifact.format == fmt
    with Image.open(io.BytesIO(artifact.data)) as image:
        info = dict(image.info)
        pixels = np.asarray(image.convert("I") if fmt == "png16" else image.convert("L"),
                            dtype=np.float32)
    scale = 65535.0 if fmt == "png16" else 255.0
    assert np.abs(pixels / scale - reference(client)).mean() < tolerance
    raw = {"png16": info.get("museforge"), "jpeg": info.get("comment"),
           "webp": info.get("xmp")}[fmt]
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    assert '"generator": "image.digits"' in text and '"seed": "12"' in text
    again = client.generate("image.digits", {"digit": 6}, seed=12, fmt=fmt).artifacts[0]
    assert again.data == artifact.data


def test_exr_is_linear_float_with_provenance(client: Client, tmp_path: Path) -> None:
    artifact = client.generate("image.digits", {"digit": 6}, seed=12, fmt="exr").artifacts[0]
    assert artifact.media_type == "image/x-exr" and artifact.filename.endswith(".exr")
    path = tmp_path / artifact.filename
    path.write_bytes(artifact.data)
    with OpenEXR.File(str(path)) as exr:
        provenance = json.loads(exr.header()["museforge"])  # the header dies with the file
        values = np.array(exr.channels()["Y"].pixels)
    assert values.dtype == np.float32 and values.shape == (28, 28)
    assert provenance["generator"] == "image.digits"
    np.testing.assert_allclose(values, srgb_to_linear(reference(client)), atol=0.01)


def test_formats_are_listed_and_unknown_ones_refused(client: Client) -> None:
    [info] = [g for g in client.generators() if g.name == "image.digits"]
    assert list(info.formats) == ["png", "png16", "jpeg", "webp", "exr"]
    plugins = {p.name: p for p in client.plugins()}
    assert "register_encoders" in plugins["image"].hooks

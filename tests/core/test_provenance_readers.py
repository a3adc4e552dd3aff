"""Every format museforge writes (STL aside) gives its provenance back from the file alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from museforge.client import Client
from museforge.config import Settings
from museforge.engine.catalogue import Engine

CASES: list[tuple[str, dict[str, Any], str]] = (
    [("image.digits", {}, f) for f in ("png", "png16", "jpeg", "webp", "exr")]
    + [("music.melody", {"bars": 2}, f) for f in ("wav", "flac", "ogg", "mid")]
    + [("mesh.props", {"resolution": 32}, f) for f in ("glb", "gltf", "obj", "ply", "usda", "usdz")])
ENCODERS = Engine(Settings(plugins=["image", "music", "mesh"])).host.load().encoders  # no model loaded


@pytest.mark.parametrize(("generator", "parameters", "fmt"), CASES, ids=[c[2] for c in CASES])
def test_a_file_gives_back_the_provenance_its_reply_carried(client: Client, generator: str,
                                                             parameters: dict[str, Any], fmt: str) -> None:
    artifact = client.generate(generator, parameters, seed=5, fmt=fmt).artifacts[0]
    reader = ENCODERS[fmt].read_provenance
    assert reader is not None
    assert reader(artifact.data) == dict(artifact.metadata)
    # Another format's reader reads nothing from it (or the same, for formats of one family).
    family = {"png": "png", "png16": "png", "wav": "audio", "flac": "audio", "ogg": "audio", "mid": "audio"}
    for name, other in ENCODERS.items():
        if other.read_provenance is not None and family.get(name, name) != family.get(fmt, fmt):
            assert other.read_provenance(artifact.data) == {}, name


def test_readers_take_foreign_and_damaged_bytes_quietly() -> None:
    for name, encoder in ENCODERS.items():
        if encoder.read_provenance is not None:
            for data in (b"", b"\x00" * 64, b"ply\ncomment museforge {not json", b"#usda 1.0\n(\n"):
                assert encoder.read_provenance(data) == {}, name


def test_a_long_provenance_line_is_read_whole() -> None:
    # Parameters (a long prompt, many model digests) make the line longer than any fixed head.
    provenance = {"generator": "mesh.props", "parameters": json.dumps({"note": "x" * 20_000})}
    line = json.dumps(provenance, sort_keys=True)
    obj = f"# museforge 1.0\n# museforge: {line}\nv 0 0 0\n".encode()
    ply = f"ply\nformat binary_little_endian 1.0\ncomment museforge 1.0\ncomment museforge {line}\n".encode()
    assert ENCODERS["obj"].read_provenance is not None and ENCODERS["ply"].read_provenance is not None
    assert ENCODERS["obj"].read_provenance(obj) == provenance
    assert ENCODERS["ply"].read_provenance(ply + b"end_header\n") == provenance

"""The provenance each mesh format carries, read back from the file (see ``formats``).

glTF keeps it as ``asset.extras``; OBJ and PLY as a comment line; USD in the layer's
``customLayerData``. STL has no room for it.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from collections.abc import Callable

from museforge import PROVENANCE_KEY, provenance_from_text, quietly

GLB_HEADER = struct.Struct("<III")
CHUNK_HEADER = struct.Struct("<II")
GLB_MAGIC, GLB_JSON = 0x46546C67, 0x4E4F534A  # "glTF", "JSON"
HEAD_LINES = 8  # OBJ and PLY write it in their first lines
USD_PROVENANCE = re.compile(rf'string {PROVENANCE_KEY} = "((?:[^"\\]|\\.)*)"')
USD_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def _extras(document: object) -> dict[str, str]:
    asset = document.get("asset") if isinstance(document, dict) else None
    extras = asset.get("extras") if isinstance(asset, dict) else None
    return {str(k): str(v) for k, v in extras.items()} if isinstance(extras, dict) else {}


def read_glb(data: bytes) -> dict[str, str]:
    magic, _, _ = GLB_HEADER.unpack_from(data)
    length, kind = CHUNK_HEADER.unpack_from(data, GLB_HEADER.size)
    if magic != GLB_MAGIC or kind != GLB_JSON:
        return {}
    start = GLB_HEADER.size + CHUNK_HEADER.size
    return _extras(json.loads(data[start:start + length]))


def read_gltf(data: bytes) -> dict[str, str]:
    return _extras(json.loads(data)) if data.lstrip()[:1] == b"{" else {}


def _first_lines(data: bytes, count: int) -> list[bytes]:
    """The first ``count`` lines, however long (a provenance line grows with its parameters)."""
    lines: list[bytes] = []
    start = 0
    while len(lines) < count and start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        lines.append(data[start:end].rstrip(b"\r"))
        start = end + 1
    return lines


def _comment(data: bytes, prefix: bytes) -> dict[str, str]:
    for line in _first_lines(data, HEAD_LINES):  # the software line may share the prefix
        found = provenance_from_text(line[len(prefix):]) if line.startswith(prefix) else {}
        if found:
            return found
    return {}


def read_obj(data: bytes) -> dict[str, str]:
    return _comment(data, f"# {PROVENANCE_KEY}: ".encode())


def read_ply(data: bytes) -> dict[str, str]:
    return _comment(data, f"comment {PROVENANCE_KEY} ".encode()) if data.startswith(b"ply") else {}


def read_usda(data: bytes) -> dict[str, str]:
    if not data.startswith(b"#usda"):
        return {}
    found = USD_PROVENANCE.search(data[:1 << 20].decode("utf-8", "replace"))
    if found is None:
        return {}
    text = re.sub(r"\\(.)", lambda m: USD_ESCAPES.get(m.group(1), m.group(1)), found.group(1))
    return provenance_from_text(text)


def read_usdz(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        first = archive.infolist()[0]  # a usdz's root layer comes first
        return read_usda(archive.read(first)) if first.filename.endswith(".usda") else {}


READERS: dict[str, Callable[[bytes], dict[str, str]]] = {
    name: quietly(reader) for name, reader in (
        ("glb", read_glb), ("gltf", read_gltf), ("obj", read_obj), ("ply", read_ply),
        ("usda", read_usda), ("usdz", read_usdz))
}

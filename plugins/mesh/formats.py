"""Mesh output formats: glTF (GLB and embedded .gltf), OBJ, PLY, STL, USD (.usda and .usdz).

``media.data`` is a :class:`MeshAsset`: metres, Y up, counter-clockwise triangles seen
from outside, which is what glTF, USD (``rightHanded``) and STL expect, so no format
needs its geometry converted. Every file is written by hand with numpy and the
standard library (the serving path has no mesh library) and is a pure function of its
input: fixed float formats, no timestamps, no dict-order or platform dependence.

What each format keeps: glTF and USD hold every level of detail (glTF as ``_LODn``
nodes, the coarser ones reached only through LOD0's ``MSFT_lod``; USD as a ``LOD``
variant set), OBJ holds each level as its own ``o`` object, PLY and STL hold LOD0 only
(they have one mesh per file).
"""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from museforge import PROVENANCE_KEY, Encoder, Media, provenance_json, software_tag

from .asset import MeshAsset, MeshLevel
from .provenance_readers import READERS

# glTF constants (glTF 2.0 spec, section 5).
GLB_MAGIC = 0x46546C67  # "glTF"
GLB_JSON = 0x4E4F534A  # "JSON"
GLB_BIN = 0x004E4942  # "BIN\0"
FLOAT = 5126
UNSIGNED_INT = 5125
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
TRIANGLES = 4
BASE_COLOUR = [0.8, 0.8, 0.8, 1.0]  # light grey, so shading reads well before a studio assigns materials
ROUGHNESS = 0.8

USDZ_ALIGNMENT = 64  # the usdz spec: every file's data starts on a 64-byte boundary
USDZ_PADDING_ID = 0x1986  # zip extra-field id USD's own writer uses for that padding

Builder = Callable[[MeshAsset, Mapping[str, str]], bytes]


def mesh_asset(media: Media, format_name: str) -> MeshAsset:
    """The asset a mesh encoder writes, or a ValueError saying what arrived instead."""
    asset = media.data
    if not isinstance(asset, MeshAsset):
        raise ValueError(f"{format_name} encodes a MeshAsset, got {type(asset).__name__}")
    for number, level in enumerate(asset.levels):
        # glTF forbids empty accessors and NaN bounds are not JSON: refuse both in every
        # format, so a request fails the same way whatever format it asked for.
        if not len(level.faces):
            raise ValueError(f"{format_name}: LOD{number} of {asset.name!r} has no triangles")
        if not (np.isfinite(level.vertices).all() and np.isfinite(level.normals).all()):
            raise ValueError(f"{format_name}: LOD{number} of {asset.name!r} has NaN or infinite coordinates")
    return asset


def lod_name(asset: MeshAsset, number: int) -> str:
    return f"{asset.name}_LOD{number}"


def one_line(text: str) -> str:
    """Text for a line-based header (PLY comment, OBJ comment, STL header): no line breaks."""
    return " ".join(text.splitlines())


def encoder(name: str, media_type: str, build: Builder) -> Encoder:
    def encode(media: Media, provenance: Mapping[str, str]) -> bytes:
        return build(mesh_asset(media, name), provenance)

    return Encoder(name=name, modality="mesh", media_type=media_type, extension=name, encode=encode,
                   read_provenance=READERS.get(name))


# --- glTF ---------------------------------------------------------------------------------------


class GltfBuffer:
    """The one binary buffer of a glTF document, with its bufferViews and accessors."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.length = 0
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def add(self, array: np.ndarray, component: int, kind: str, target: int) -> int:
        """Append an array as a bufferView + accessor (with min/max); returns the accessor index."""
        data = array.astype("<f4" if component == FLOAT else "<u4").tobytes()
        self.views.append({"buffer": 0, "byteOffset": self.length, "byteLength": len(data), "target": target})
        # 12-byte rows and 4-byte indices keep every view 4-byte aligned without padding.
        self.chunks.append(data)
        self.length += len(data)
        columns = array.reshape(len(array), -1)
        cast: Callable[[Any], float | int] = float if component == FLOAT else int
        self.accessors.append({
            "bufferView": len(self.views) - 1,
            "componentType": component,
            "count": len(columns),
            "type": kind,
            "min": [cast(x) for x in columns.min(axis=0)],
            "max": [cast(x) for x in columns.max(axis=0)],
        })
        return len(self.accessors) - 1

    def data(self) -> bytes:
        return b"".join(self.chunks)


def gltf_document(asset: MeshAsset, provenance: Mapping[str, str]) -> tuple[dict[str, Any], bytes]:
    """The glTF JSON (without its buffer's URI) and the binary buffer it indexes."""
    buffer = GltfBuffer()
    meshes: list[dict[str, Any]] = []
    for number, level in enumerate(asset.levels):
        attributes = {
            "POSITION": buffer.add(level.vertices, FLOAT, "VEC3", ARRAY_BUFFER),
            "NORMAL": buffer.add(level.normals, FLOAT, "VEC3", ARRAY_BUFFER),
        }
        indices = buffer.add(level.faces.reshape(-1), UNSIGNED_INT, "SCALAR", ELEMENT_ARRAY_BUFFER)
        meshes.append({
            "name": lod_name(asset, number),
            "primitives": [{"attributes": attributes, "indices": indices, "material": 0, "mode": TRIANGLES}],
        })
    count = len(asset.levels)
    # Node 0 is the root; node n + 1 holds LOD n. Only LOD0 is in the scene: MSFT_lod
    # requires the coarser nodes to be reached through its ids alone (Babylon.js refuses
    # a node reached twice), so a reader without the extension shows LOD0 only.
    lods: list[dict[str, Any]] = [{"name": lod_name(asset, n), "mesh": n} for n in range(count)]
    root: dict[str, Any] = {"name": asset.name, "children": [1],
                            "extras": {"lod_nodes": [lod["name"] for lod in lods]}}
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": software_tag(provenance),
                  "extras": dict(sorted(provenance.items()))},
        "scene": 0,
        "scenes": [{"name": asset.name, "nodes": [0]}],
        "nodes": [root, *lods],
        "meshes": meshes,
        "materials": [{
            "name": "museforge_default",
            "pbrMetallicRoughness": {"baseColorFactor": BASE_COLOUR, "metallicFactor": 0.0,
                                     "roughnessFactor": ROUGHNESS},
        }],
        "accessors": buffer.accessors,
        "bufferViews": buffer.views,
        "buffers": [{"byteLength": buffer.length}],
    }
    if count > 1:
        lods[0]["extensions"] = {"MSFT_lod": {"ids": list(range(2, count + 1))}}
        # Switching hints (screen coverage below which each level hands over): halve per level.
        lods[0]["extras"] = {"MSFT_screencoverage": [0.5 ** (n + 1) for n in range(count - 1)] + [0.01]}
        # Used, not required: every reader opens the file and one without LOD support
        # shows LOD0, the coarser nodes being outside the scene's hierarchy.
        document["extensionsUsed"] = ["MSFT_lod"]
    return document, buffer.data()


def gltf_json(document: Mapping[str, Any]) -> bytes:
    # allow_nan=False: a stray NaN must fail here rather than write invalid JSON.
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")


def padded(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def build_glb(asset: MeshAsset, provenance: Mapping[str, str]) -> bytes:
    document, binary = gltf_document(asset, provenance)
    chunks = b""
    for kind, payload in ((GLB_JSON, padded(gltf_json(document), b" ")), (GLB_BIN, padded(binary, b"\0"))):
        chunks += struct.pack("<II", len(payload), kind) + payload
    return struct.pack("<III", GLB_MAGIC, 2, 12 + len(chunks)) + chunks


def build_gltf(asset: MeshAsset, provenance: Mapping[str, str]) -> bytes:
    document, binary = gltf_document(asset, provenance)
    uri = "data:application/octet-stream;base64," + base64.b64encode(binary).decode("ascii")
    document["buffers"][0]["uri"] = uri
    return gltf_json(document)


# --- OBJ, PLY, STL --------------------------------------------------------------------------------


def rows(template: str, array: np.ndarray) -> str:
    """Format each row of a 2-D array with one %-template (one C-level pass, not a Python loop per value)."""
    values = array.astype(np.float64 if array.dtype.kind == "f" else np.int64).reshape(-1).tolist()
    return (template * len(array)) % tuple(values)


def build_obj(asset: MeshAsset, provenance: Mapping[str, str]) -> bytes:
    parts = [f"# {one_line(software_tag(provenance))}\n",
             f"# {PROVENANCE_KEY}: {provenance_json(provenance)}\n"]
    first = 1  # OBJ indices are 1-based and count across the whole file
    for number, level in enumerate(asset.levels):
        parts.append(f"o {'_'.join(lod_name(asset, number).split())}\n")
        # %.9g round-trips float32: fixed decimals collapsed a millimetre prop's vertices.
        parts.append(rows("v %.9g %.9g %.9g\n", level.vertices))
        parts.append(rows("vn %.6f %.6f %.6f\n", level.normals))
        faces = level.faces.astype(np.int64) + first
        parts.append(rows("f %d//%d %d//%d %d//%d\n", np.repeat(faces, 2, axis=1)))
        first += len(level.vertices)
    return "".join(parts).encode("utf-8")


def build_ply(asset: MeshAsset, provenance: Mapping[str, str]) -> bytes:
    level = asset.levels[0]
    header = "\n".join([
        "ply",
        "format binary_little_endian 1.0",
        f"comment {one_line(software_tag(provenance))}",
        f"comment {PROVENANCE_KEY} {provenance_json(provenance)}",
        f"comment {one_line(lod_name(asset, 0))}",
        f"element vertex {len(level.vertices)}",
        *(f"property float {axis}" for axis in ("x", "y", "z", "nx", "ny", "nz")),
        f"element face {len(level.faces)}",
        "property list uchar uint vertex_indices",
        "end_header",
    ]) + "\n"
    vertices = np.hstack([level.vertices, level.normals]).astype("<f4")
    faces = np.zeros(len(level.faces), dtype=[("count", "u1"), ("index", "<u4", (3,))])  # packed, 13 bytes
    faces["count"] = 3
    faces["index"] = level.faces
    return header.encode("utf-8") + vertices.tobytes() + faces.tobytes()


def face_normals(level: MeshLevel) -> np.ndarray:
    """Unit normals of the triangles (right-hand rule), zero for degenerate ones."""
    corners = level.vertices.astype(np.float64)[level.faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)


def build_stl(asset: MeshAsset, provenance: Mapping[str, str]) -> bytes:
    level = asset.levels[0]
    # Binary STL readers sniff "solid" to mean ASCII; the header starts "museforge" instead.
    text = one_line(f"{software_tag(provenance)} {lod_name(asset, 0)}")
    header = text.encode("ascii", "replace")[:80].ljust(80, b"\0")
    triangles = np.zeros(len(level.faces), dtype=[("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)),
                                                  ("attributes", "<u2")])  # packed, 50 bytes
    triangles["normal"] = face_normals(level)
    triangles["corners"] = level.vertices[level.faces]
    return header + struct.pack("<I", len(triangles)) + triangles.tobytes()


# --- USD --------------------------------------------------------------------------------------------


def usd_string(text: str) -> str:
    """A double-quoted USD string literal (C-style escapes, which Sdf's text parser reads)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def usd_identifier(name: str) -> str:
    """A valid prim name from any asset name: [A-Za-z_][A-Za-z0-9_]*."""
    identifier = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return identifier if identifier[:1].isalpha() or identifier[:1] == "_" else f"_{identifier}"


def usd_array(template: str, array: np.ndarray) -> str:
    # %.9g round-trips float32 exactly; the trailing ", " of the last item is sliced off.
    return "[" + rows(template + ", ", array)[:-2] + "]"


def usd_mesh(name: str, level: MeshLevel, indent: str) -> Iterable[str]:
    low, high = level.vertices.min(axis=0), level.vertices.max(axis=0)
    inner = indent + "    "
    yield f'{indent}def Mesh "{name}"'
    yield f"{indent}{{"
    yield f"{inner}float3[] extent = {usd_array('(%.9g, %.9g, %.9g)', np.stack([low, high]))}"
    yield f"{inner}int[] faceVertexCounts = [{', '.join(['3'] * len(level.faces))}]"
    yield f"{inner}int[] faceVertexIndices = {usd_array('%d', level.faces.reshape(-1, 1))}"
    yield f"{inner}normal3f[] normals = {usd_array('(%.9g, %.9g, %.9g)', level.normals)} ("
    yield f'{inner}    interpolation = "vertex"'
    yield f"{inner})"
    yield f'{inner}uniform token orientation = "rightHanded"'
    yield f"{inner}point3f[] points = {usd_array('(%.9g, %.9g, %.9g)', level.vertices)}"
    yield f'{inner}uniform token subdivisionScheme = "none"'
    yield f"{indent}}}"


def build_usda(asset: MeshAsset, provenance: Mapping[str, str]) -> bytes:
    root = usd_identifier(asset.name)
    lines = [
        "#usda 1.0",
        "(",
        "    customLayerData = {",
        f"        string generator = {usd_string(software_tag(provenance))}",
        f"        string {PROVENANCE_KEY} = {usd_string(provenance_json(provenance))}",
        "    }",
        f'    defaultPrim = "{root}"',
        "    metersPerUnit = 1",
        '    upAxis = "Y"',
        ")",
        "",
        # Each LOD is a variant of one model prim: a renderer composes exactly one level,
        # and a pipeline switches with the "LOD" selection (USD's usual way for LODs).
        f'def Xform "{root}" (',
        '    kind = "component"',
        '    variants = {',
        '        string LOD = "LOD0"',
        "    }",
        '    prepend variantSets = "LOD"',
        ")",
        "{",
        '    variantSet "LOD" = {',
    ]
    for number, level in enumerate(asset.levels):
        lines.append(f'        "LOD{number}" {{')
        lines.extend(usd_mesh(f"LOD{number}", level, " " * 12))
        lines.append("        }")
    lines += ["    }", "}", ""]
    return "\n".join(lines).encode("utf-8")


def stored_zip(files: Iterable[tuple[str, bytes]], alignment: int) -> bytes:
    """A zip archive of uncompressed files, each file's data starting on an ``alignment`` boundary.

    Written by hand rather than with zipfile so that every byte is fixed: DOS time 0
    (1980-01-01), no host-system or permission fields that vary between machines.
    """
    local, central = bytearray(), bytearray()
    count = 0
    for name, data in files:
        encoded = name.encode("utf-8")
        crc = zlib.crc32(data)
        start = len(local)
        # The padding rides in an extra field (4-byte header + zeros) of the local header.
        pad = -(start + 30 + len(encoded) + 4) % alignment
        extra = struct.pack("<HH", USDZ_PADDING_ID, pad) + b"\0" * pad
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, len(data), len(data),
                             len(encoded), len(extra)) + encoded + extra + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, crc, len(data),
                               len(data), len(encoded), 0, 0, 0, 0, 0, start) + encoded
        count += 1
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(local), 0)
    return bytes(local + central + end)


def build_usdz(asset: MeshAsset, provenance: Mapping[str, str]) -> bytes:
    # The first file of a usdz is its root layer.
    return stored_zip([(f"{usd_identifier(asset.name)}.usda", build_usda(asset, provenance))], USDZ_ALIGNMENT)


MESH_ENCODERS: tuple[Encoder, ...] = (
    encoder("glb", "model/gltf-binary", build_glb),
    encoder("gltf", "model/gltf+json", build_gltf),
    encoder("obj", "model/obj", build_obj),
    encoder("ply", "application/ply", build_ply),
    encoder("stl", "model/stl", build_stl),
    encoder("usda", "model/vnd.usda", build_usda),
    encoder("usdz", "model/vnd.usdz+zip", build_usdz),
)

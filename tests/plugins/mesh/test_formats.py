"""The mesh formats load back in independent readers (trimesh, pygltflib, Pixar's USD) unchanged."""

from __future__ import annotations

import base64
import io
import json
import struct
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pygltflib
import pytest
import trimesh
from pxr import Usd, UsdGeom, UsdValidation

from museforge import Encoder, Media
from museforge.plugins.mesh.asset import MeshAsset, MeshLevel
from museforge.plugins.mesh.formats import MESH_ENCODERS, usd_identifier

PROVENANCE = {
    "generator": "mesh.props",
    "museforge_version": "0.1.0",
    "seed": "42",
    # Characters each format has to escape: quotes, backslash, a line break, non-ASCII.
    "params": '{"family": "vase"}\\ line one\nline two: grün',
}
SEMI_AXES = np.array([0.6, 0.4, 0.5])  # an ellipsoid, so swapped axes or a wrong scale show
ENCODERS = {encoder.name: encoder for encoder in MESH_ENCODERS}


def icosahedron() -> tuple[np.ndarray, np.ndarray]:
    t = (1 + 5 ** 0.5) / 2
    vertices = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    faces = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                      [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                      [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    return vertices / np.linalg.norm(vertices, axis=1, keepdims=True), faces


def subdivide(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each triangle in four, new points pushed onto the unit sphere (winding kept)."""
    points = [tuple(v) for v in vertices]
    midpoints: dict[tuple[int, int], int] = {}

    def midpoint(a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        if key not in midpoints:
            m = (vertices[a] + vertices[b]) / 2
            points.append(tuple(m / np.linalg.norm(m)))
            midpoints[key] = len(points) - 1
        return midpoints[key]

    result = []
    for a, b, c in faces:
        ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
        result += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
    return np.array(points), np.array(result)


def ellipsoid_level(sphere: np.ndarray, faces: np.ndarray) -> MeshLevel:
    """The unit sphere stretched to SEMI_AXES, standing on y = 0 like a generated prop."""
    vertices = sphere * SEMI_AXES + [0, SEMI_AXES[1], 0]
    normals = sphere / SEMI_AXES  # the gradient of the ellipsoid's implicit function
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return MeshLevel(vertices.astype(np.float32), faces.astype(np.uint32), normals.astype(np.float32))


def volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume (divergence theorem): positive when triangles wind CCW seen from outside."""
    a, b, c = (np.asarray(vertices, np.float64)[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)


@pytest.fixture(scope="module")
def asset() -> MeshAsset:
    coarse = icosahedron()
    return MeshAsset(name="vase-42", levels=(ellipsoid_level(*subdivide(*coarse)), ellipsoid_level(*coarse)))


def encode(fmt: str, asset: MeshAsset, provenance: Mapping[str, str] = PROVENANCE) -> bytes:
    return ENCODERS[fmt].encode(Media(kind="mesh", data=asset, index=0), provenance)


def load(data: bytes, file_type: str, **options: Any) -> Any:
    with warnings.catch_warnings():  # trimesh's OBJ reader warns about the texture coordinates we omit
        warnings.simplefilter("ignore", RuntimeWarning)
        return trimesh.load(io.BytesIO(data), file_type=file_type, **options)


def test_fixture_is_a_closed_outward_mesh(asset: MeshAsset) -> None:
    for level, faces in zip(asset.levels, (80, 20), strict=True):
        assert len(level.faces) == faces
        # Positive: CCW seen from outside. An icosahedron holds 0.61 of its sphere's volume.
        assert volume(level.vertices, level.faces) > 0.5 * 4 / 3 * np.pi * SEMI_AXES.prod()
        assert trimesh.Trimesh(level.vertices, level.faces, process=False).is_watertight


def test_encoders_declare_mesh_formats() -> None:
    assert list(ENCODERS) == ["glb", "gltf", "obj", "ply", "stl", "usda", "usdz"]
    assert all(isinstance(e, Encoder) and e.modality == "mesh" and e.extension == e.name
               for e in MESH_ENCODERS)
    assert ENCODERS["glb"].media_type == "model/gltf-binary"
    assert ENCODERS["gltf"].media_type == "model/gltf+json"


# --- glTF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["glb", "gltf"])
def test_gltf_loads_in_trimesh_with_every_lod(asset: MeshAsset, fmt: str) -> None:
    scene = load(encode(fmt, asset), fmt, process=False)
    assert isinstance(scene, trimesh.Scene)
    assert sorted(scene.geometry) == ["vase-42_LOD0", "vase-42_LOD1"]
    # LOD0 alone is in the scene, under the one root node named after the asset: a reader
    # without MSFT_lod shows it and not the coarser level.
    assert scene.graph.nodes_geometry == ["vase-42_LOD0"]
    assert scene.graph.transforms.parents["vase-42_LOD0"] == "vase-42"
    for number, level in enumerate(asset.levels):
        mesh = scene.geometry[f"vase-42_LOD{number}"]
        assert (len(mesh.vertices), len(mesh.faces)) == (len(level.vertices), len(level.faces))
        np.testing.assert_array_equal(mesh.vertices, level.vertices)
        np.testing.assert_array_equal(mesh.faces, level.faces)
        assert mesh.is_watertight
        assert mesh.volume == pytest.approx(volume(level.vertices, level.faces), rel=1e-6)


def gltf_blob(fmt: str, data: bytes) -> tuple[pygltflib.GLTF2, bytes]:
    if fmt == "glb":
        gltf = pygltflib.GLTF2.load_from_bytes(data)
        return gltf, gltf.binary_blob()
    gltf = pygltflib.GLTF2.from_json(data.decode("utf-8"))
    uri = gltf.buffers[0].uri
    prefix = "data:application/octet-stream;base64,"
    assert uri.startswith(prefix)
    return gltf, base64.b64decode(uri[len(prefix):])


def accessor_array(gltf: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    dtype = {pygltflib.FLOAT: "<f4", pygltflib.UNSIGNED_INT: "<u4"}[accessor.componentType]
    width = {"VEC3": 3, "SCALAR": 1}[accessor.type]
    assert view.byteOffset % 4 == 0 and view.byteLength == accessor.count * width * 4
    chunk = blob[view.byteOffset:view.byteOffset + view.byteLength]
    return np.frombuffer(chunk, dtype).reshape(accessor.count, width)


@pytest.mark.parametrize("fmt", ["glb", "gltf"])
def test_gltf_document(asset: MeshAsset, fmt: str) -> None:
    gltf, blob = gltf_blob(fmt, encode(fmt, asset))
    assert gltf.asset.version == "2.0" and gltf.asset.generator == "museforge 0.1.0"
    assert gltf.asset.extras == PROVENANCE
    assert gltf.buffers[0].byteLength == len(blob)
    root = gltf.nodes[gltf.scenes[gltf.scene].nodes[0]]
    assert root.name == "vase-42" and root.mesh is None
    # The root's one child is LOD0; the coarser level is reached through its MSFT_lod only.
    [lod0] = root.children
    ids = gltf.nodes[lod0].extensions["MSFT_lod"]["ids"]
    lods = [gltf.nodes[i] for i in [lod0, *ids]]
    assert [node.name for node in lods] == ["vase-42_LOD0", "vase-42_LOD1"]
    assert [gltf.meshes[node.mesh].name for node in lods] == ["vase-42_LOD0", "vase-42_LOD1"]
    assert lods[0].extensions == {"MSFT_lod": {"ids": [2]}} and not lods[1].children
    assert len(lods[0].extras["MSFT_screencoverage"]) == 2 and not lods[1].extensions
    assert gltf.extensionsUsed == ["MSFT_lod"] and not gltf.extensionsRequired
    assert gltf.materials[0].pbrMetallicRoughness.roughnessFactor == pytest.approx(0.8)
    for node, level in zip(lods, asset.levels, strict=True):
        primitive = gltf.meshes[node.mesh].primitives[0]
        assert primitive.mode == pygltflib.TRIANGLES and primitive.material == 0
        checks = [(primitive.attributes.POSITION, level.vertices, pygltflib.ARRAY_BUFFER),
                  (primitive.attributes.NORMAL, level.normals, pygltflib.ARRAY_BUFFER),
                  (primitive.indices, level.faces.reshape(-1, 1), pygltflib.ELEMENT_ARRAY_BUFFER)]
        for index, expected, target in checks:
            accessor = gltf.accessors[index]
            assert gltf.bufferViews[accessor.bufferView].target == target
            np.testing.assert_array_equal(accessor_array(gltf, blob, index), expected)
            assert accessor.min == expected.min(axis=0).tolist()
            assert accessor.max == expected.max(axis=0).tolist()


def test_glb_container(asset: MeshAsset) -> None:
    data = encode("glb", asset)
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_length, json_type = struct.unpack_from("<I4s", data, 12)
    bin_length, bin_type = struct.unpack_from("<I4s", data, 20 + json_length)
    assert (json_type, bin_type) == (b"JSON", b"BIN\0")
    assert json_length % 4 == 0 and bin_length % 4 == 0
    assert 28 + json_length + bin_length == len(data)
    # The .gltf is the same document, only with the buffer inlined.
    embedded = json.loads(encode("gltf", asset))
    assert embedded["buffers"][0].pop("uri").startswith("data:")
    assert json.loads(data[20:20 + json_length]) == embedded


def test_single_level_gltf_has_no_lod_extension(asset: MeshAsset) -> None:
    single = MeshAsset(name="cube", levels=asset.levels[:1])
    gltf = pygltflib.GLTF2.load_from_bytes(encode("glb", single))
    assert [node.name for node in gltf.nodes] == ["cube", "cube_LOD0"]
    assert not gltf.extensionsUsed and not gltf.nodes[1].extensions
    assert len(load(encode("glb", single), "glb").geometry) == 1


# --- OBJ, PLY, STL ----------------------------------------------------------------------------------


def test_obj_round_trip(asset: MeshAsset) -> None:
    data = encode("obj", asset)
    lines = data.decode("utf-8").splitlines()
    assert lines[0] == "# museforge 0.1.0"
    assert lines[1].startswith("# museforge: ") and json.loads(lines[1][13:]) == PROVENANCE
    assert [line for line in lines if line.startswith("o ")] == ["o vase-42_LOD0", "o vase-42_LOD1"]
    # process=True drops the vertices of the other object, which trimesh keeps otherwise.
    scene = load(data, "obj", force="scene", split_objects=True, process=True)
    assert sorted(scene.geometry) == ["vase-42_LOD0", "vase-42_LOD1"]
    for number, level in enumerate(asset.levels):
        mesh = scene.geometry[f"vase-42_LOD{number}"]
        assert (len(mesh.vertices), len(mesh.faces)) == (len(level.vertices), len(level.faces))
        assert mesh.is_watertight
        assert mesh.volume == pytest.approx(volume(level.vertices, level.faces), rel=1e-4)
        np.testing.assert_allclose(np.sort(mesh.vertices, axis=0), np.sort(level.vertices, axis=0), atol=1e-6)


def test_a_millimetre_prop_keeps_its_shape_in_obj(asset: MeshAsset) -> None:
    level = asset.levels[0]
    tiny = MeshAsset(name="bead", levels=(MeshLevel(level.vertices * np.float32(0.0005), level.faces,
                                                    level.normals),))
    mesh = load(encode("obj", tiny), "obj", process=True)
    assert mesh.is_watertight and len(mesh.vertices) == len(level.vertices)
    np.testing.assert_array_equal(np.sort(mesh.vertices.astype(np.float32), axis=0),
                                  np.sort(tiny.levels[0].vertices, axis=0))  # float32 exactly


def test_obj_faces_reference_their_own_normals(asset: MeshAsset) -> None:
    faces = [line for line in encode("obj", asset).decode().splitlines() if line.startswith("f ")]
    assert faces[0] == "f {0}//{0} {1}//{1} {2}//{2}".format(*(asset.levels[0].faces[0] + 1))
    offset = len(asset.levels[0].vertices) + 1  # LOD1 indexes past LOD0's vertices
    assert faces[80] == "f {0}//{0} {1}//{1} {2}//{2}".format(*(asset.levels[1].faces[0] + offset))


def ply_header(data: bytes) -> list[str]:
    return data[:data.index(b"end_header\n")].decode("ascii").splitlines()


def test_ply_round_trip(asset: MeshAsset) -> None:
    level = asset.levels[0]
    data = encode("ply", asset)
    header = ply_header(data)
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    comments = [line[len("comment "):] for line in header if line.startswith("comment ")]
    assert "museforge 0.1.0" in comments
    provenance = [json.loads(c[len("museforge "):]) for c in comments if c.startswith("museforge {")]
    assert provenance == [PROVENANCE]
    mesh = load(data, "ply", process=False)
    np.testing.assert_array_equal(mesh.vertices, level.vertices)
    np.testing.assert_array_equal(mesh.faces, level.faces)
    np.testing.assert_array_equal(mesh.vertex_normals, level.normals)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(volume(level.vertices, level.faces), rel=1e-6)


def test_stl_round_trip(asset: MeshAsset) -> None:
    level = asset.levels[0]
    data = encode("stl", asset)
    assert data.startswith(b"museforge 0.1.0 vase-42_LOD0") and not data.startswith(b"solid")
    assert len(data) == 84 + 50 * len(level.faces)
    mesh = load(data, "stl")  # STL repeats each corner; trimesh merges them back
    assert (len(mesh.vertices), len(mesh.faces)) == (len(level.vertices), len(level.faces))
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(volume(level.vertices, level.faces), rel=1e-6)
    # The stored facet normals are the unit right-hand-rule normals, pointing outwards.
    stored = np.frombuffer(data[84:], dtype=[("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("a", "<u2")])
    np.testing.assert_allclose(np.linalg.norm(stored["n"], axis=1), 1, atol=1e-6)
    outward = stored["v"].mean(axis=1) - [0, SEMI_AXES[1], 0]
    assert (np.einsum("ij,ij->i", stored["n"], outward) > 0).all()


# --- USD --------------------------------------------------------------------------------------------


def open_usd(tmp_path: Path, fmt: str, asset: MeshAsset) -> Usd.Stage:
    path = tmp_path / f"{asset.name}.{fmt}"
    path.write_bytes(encode(fmt, asset))
    stage = Usd.Stage.Open(str(path))
    assert stage is not None
    return stage


def validation_errors(stage: Usd.Stage) -> list[str]:
    validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
    return [error.GetMessage() for error in UsdValidation.ValidationContext(validators).Validate(stage)]


@pytest.mark.parametrize("fmt", ["usda", "usdz"])
def test_usd_stage(tmp_path: Path, asset: MeshAsset, fmt: str) -> None:
    stage = open_usd(tmp_path, fmt, asset)
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    layer_data = stage.GetRootLayer().customLayerData
    assert json.loads(layer_data["museforge"]) == PROVENANCE
    assert layer_data["generator"] == "museforge 0.1.0"
    root = stage.GetDefaultPrim()
    assert root.GetPath() == "/vase_42" and root.IsA(UsdGeom.Xform)
    lod = root.GetVariantSets().GetVariantSet("LOD")
    assert lod.GetVariantNames() == ["LOD0", "LOD1"] and lod.GetVariantSelection() == "LOD0"
    for number, level in enumerate(asset.levels):
        assert lod.SetVariantSelection(f"LOD{number}")
        # Exactly the selected level is composed.
        assert [p.GetName() for p in root.GetChildren()] == [f"LOD{number}"]
        mesh = UsdGeom.Mesh(root.GetChild(f"LOD{number}"))
        points = np.array(mesh.GetPointsAttr().Get(), np.float32)
        indices = np.array(mesh.GetFaceVertexIndicesAttr().Get()).reshape(-1, 3)
        np.testing.assert_array_equal(points, level.vertices)
        np.testing.assert_array_equal(indices, level.faces)
        np.testing.assert_array_equal(np.array(mesh.GetNormalsAttr().Get(), np.float32), level.normals)
        assert list(mesh.GetFaceVertexCountsAttr().Get()) == [3] * len(level.faces)
        assert mesh.GetNormalsInterpolation() == UsdGeom.Tokens.vertex
        assert mesh.GetOrientationAttr().Get() == UsdGeom.Tokens.rightHanded
        assert mesh.GetSubdivisionSchemeAttr().Get() == UsdGeom.Tokens.none
        assert volume(points, indices) == pytest.approx(volume(level.vertices, level.faces), rel=1e-6)
        assert validation_errors(stage) == []


def test_usdz_package_layout(asset: MeshAsset) -> None:
    data = encode("usdz", asset)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        [info] = archive.infolist()
        assert info.filename == "vase_42.usda" and info.compress_type == zipfile.ZIP_STORED
        assert archive.read(info) == encode("usda", asset)
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    assert (info.header_offset + 30 + name_length + extra_length) % 64 == 0


def test_usd_identifier() -> None:
    assert usd_identifier("vase-42") == "vase_42"
    assert usd_identifier("7 rocks.v2") == "_7_rocks_v2"
    assert usd_identifier("Crate_01") == "Crate_01"


# --- every format -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(ENCODERS))
def test_deterministic(asset: MeshAsset, fmt: str) -> None:
    copy = MeshAsset(asset.name, tuple(MeshLevel(lv.vertices.copy(), lv.faces.copy(), lv.normals.copy())
                                       for lv in asset.levels))
    first = encode(fmt, asset)
    assert encode(fmt, copy) == first
    # Same mapping, other insertion order: provenance must not depend on dict order.
    assert encode(fmt, asset, dict(reversed(list(PROVENANCE.items())))) == first
    if fmt != "stl":  # the one format with no room for provenance
        assert encode(fmt, asset, {**PROVENANCE, "seed": "43"}) != first


@pytest.mark.parametrize("fmt", list(ENCODERS))
def test_rejects_what_is_not_a_mesh(asset: MeshAsset, fmt: str) -> None:
    with pytest.raises(ValueError, match="MeshAsset, got ndarray"):
        ENCODERS[fmt].encode(Media(kind="mesh", data=np.zeros((4, 3)), index=0), PROVENANCE)
    empty = MeshLevel(asset.levels[0].vertices, np.zeros((0, 3), np.uint32), asset.levels[0].normals)
    with pytest.raises(ValueError, match=r"LOD1 of 'hollow' has no triangles"):
        encode(fmt, MeshAsset("hollow", (asset.levels[0], empty)))

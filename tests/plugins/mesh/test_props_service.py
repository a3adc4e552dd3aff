"""mesh.props through a real server with the shipped model: formats, LODs, morphs, bad input, CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pygltflib
import pytest
import trimesh

from museforge.client import Client, field_violations
from tests.servers import ServerThread


def load_glb(data: bytes) -> trimesh.Scene:
    scene = trimesh.load(io.BytesIO(data), file_type="glb")
    assert isinstance(scene, trimesh.Scene)
    return scene


def lod_meshes(scene: trimesh.Scene) -> list[trimesh.Trimesh]:
    # Every level's mesh, by name: only LOD0 is in the scene graph (the rest hang off MSFT_lod).
    ordered = sorted(scene.geometry, key=lambda name: int(name.rsplit("_LOD", 1)[1]))
    return [scene.geometry[name] for name in ordered]


def test_listed_with_a_schema(client: Client) -> None:
    info = {g.name: g for g in client.generators()}["mesh.props"]
    schema = json.loads(info.parameters_schema)
    assert info.modality == "mesh"
    assert set(info.formats) == {"glb", "gltf", "obj", "ply", "stl", "usda", "usdz"}
    assert schema["properties"]["family"]["enum"] == ["rock", "vase", "crate", "column", "mushroom"]
    assert schema["properties"]["resolution"]["minimum"] == 32
    assert schema["properties"]["resolution"]["maximum"] == 128


def test_a_vase_glb_with_three_lods_loads_back_watertight(client: Client) -> None:
    reply = client.generate("mesh.props", {"family": "vase", "lods": 3, "size": 0.6}, seed=42, fmt="glb")
    [artifact] = reply.artifacts
    assert artifact.filename.endswith(".glb") and artifact.media_type == "model/gltf-binary"
    meshes = lod_meshes(load_glb(artifact.data))
    assert len(meshes) == 3
    faces = [len(m.faces) for m in meshes]
    assert faces[0] > faces[1] > faces[2] and faces[2] >= 0.15 * faces[0]
    for mesh in meshes:
        assert mesh.is_watertight and mesh.volume > 0
    bounds = meshes[0].bounds
    assert bounds[0][1] == pytest.approx(0.0, abs=1e-5)  # on the ground, Y up
    assert float((bounds[1] - bounds[0]).max()) == pytest.approx(0.6, rel=1e-4)  # metres
    document = pygltflib.GLTF2.load_from_bytes(artifact.data)
    assert sorted(n.name for n in document.nodes if n.mesh is not None) == [
        "vase-42-0_LOD0", "vase-42-0_LOD1", "vase-42-0_LOD2"]
    assert document.asset.extras["generator"] == "mesh.props"
    assert document.asset.extras["seed"] == "42"
    models = json.loads(document.asset.extras["models"])
    assert models[0]["name"] == "mesh.props" and len(models[0]["sha256"]) == 64


def test_same_seed_same_bytes_other_seed_other_shape(client: Client) -> None:
    params = {"family": "rock", "resolution": 48}
    a = client.generate("mesh.props", params, seed=7, fmt="obj").artifacts[0].data
    b = client.generate("mesh.props", params, seed=7, fmt="obj").artifacts[0].data
    c = client.generate("mesh.props", params, seed=8, fmt="obj").artifacts[0].data
    assert a == b and a != c


@pytest.mark.parametrize("fmt", ["gltf", "obj", "ply", "stl"])
def test_every_mesh_format_loads_back_as_the_same_solid(client: Client, fmt: str) -> None:
    params = {"family": "mushroom", "resolution": 40}
    glb = client.generate("mesh.props", params, seed=3, fmt="glb").artifacts[0].data
    reference = lod_meshes(load_glb(glb))[0]
    data = client.generate("mesh.props", params, seed=3, fmt=fmt).artifacts[0].data
    loaded = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh", process=fmt == "stl")
    assert isinstance(loaded, trimesh.Trimesh)
    assert loaded.is_watertight
    assert loaded.volume == pytest.approx(reference.volume, rel=1e-4)


def test_a_millimetre_prop_has_unit_normals_in_every_format(client: Client) -> None:
    # This crate has a vertex whose triangles are slivers: at 1 mm its summed normal was
    # shorter than 1e-12 and was written short, which the Khronos glTF validator rejects
    # (ACCESSOR_VECTOR3_NON_UNIT: it allows 5e-5 off unit length).
    params = {"family": "crate", "resolution": 32, "size": 0.001, "lods": 2}
    glb = client.generate("mesh.props", params, seed=1, fmt="glb").artifacts[0].data
    document = pygltflib.GLTF2.load_from_bytes(glb)
    blob = document.binary_blob()
    assert blob is not None
    for mesh in document.meshes:
        accessor = document.accessors[mesh.primitives[0].attributes.NORMAL]
        view = document.bufferViews[accessor.bufferView]
        normals = np.frombuffer(blob, "<f4", accessor.count * 3, view.byteOffset).reshape(-1, 3)
        assert np.abs(np.linalg.norm(normals, axis=1) - 1).max() < 5e-5, mesh.name
    ply = client.generate("mesh.props", params, seed=1, fmt="ply").artifacts[0].data
    loaded = trimesh.load(io.BytesIO(ply), file_type="ply", process=False)
    assert isinstance(loaded, trimesh.Trimesh)
    assert np.abs(np.linalg.norm(loaded.vertex_normals, axis=1) - 1).max() < 5e-5


def test_usd_carries_the_lods_and_the_provenance(client: Client) -> None:
    pytest.importorskip("pxr")
    from pxr import Usd, UsdGeom  # usd-core 26 no longer imports its submodules with the package

    data = client.generate("mesh.props", {"family": "crate", "lods": 2}, seed=5, fmt="usda").artifacts[0].data
    stage = Usd.Stage.CreateInMemory()
    assert stage.GetRootLayer().ImportFromString(data.decode())
    assert UsdGeom.GetStageUpAxis(stage) == "Y"
    assert json.loads(stage.GetRootLayer().customLayerData["museforge"])["generator"] == "mesh.props"
    root = stage.GetDefaultPrim()
    assert root.GetVariantSets().GetVariantSet("LOD").GetVariantNames() == ["LOD0", "LOD1"]


def test_count_gives_distinct_props_and_a_morph_walks_between_seeds(client: Client) -> None:
    reply = client.generate("mesh.props", {"family": "column", "resolution": 40}, seed=11, count=3, fmt="stl")
    assert len({a.data for a in reply.artifacts}) == 3
    walk = client.generate("mesh.props", {"family": "rock", "interpolate_to": 12, "frames": 4,
                                          "resolution": 40}, seed=11, fmt="glb")
    assert [a.index for a in walk.artifacts] == [0, 1, 2, 3]
    volumes = [lod_meshes(load_glb(a.data))[0].volume for a in walk.artifacts]
    # Frame 0 is seed 11's prop and the last frame seed 12's.
    single = client.generate("mesh.props", {"family": "rock", "resolution": 40}, seed=12, fmt="glb")
    assert volumes[-1] == pytest.approx(lod_meshes(load_glb(single.artifacts[0].data))[0].volume, rel=1e-5)


def test_a_cross_family_morph_turns_one_prop_into_another(client: Client) -> None:
    params = {"family": "vase", "interpolate_family": "crate", "interpolate_to": 11, "frames": 3,
              "resolution": 40}
    walk = client.generate("mesh.props", params, seed=11, fmt="glb")
    first, middle, last = (lod_meshes(load_glb(a.data))[0] for a in walk.artifacts)
    crate = client.generate("mesh.props", {"family": "crate", "resolution": 40}, seed=11, fmt="glb")
    assert last.volume == pytest.approx(lod_meshes(load_glb(crate.artifacts[0].data))[0].volume, rel=1e-5)
    assert middle.is_watertight and first.volume != pytest.approx(last.volume, rel=0.05)
    assert walk.artifacts[1].metadata["x.family"] == "vase:0.500,crate:0.500"
    # Each end is labelled as what it is: the last frame is the crate.
    assert [walk.artifacts[i].metadata["x.family"] for i in (0, 2)] == ["vase", "crate"]


BAD: list[tuple[dict[str, Any], str]] = [
    ({"family": "teapot"}, "parameters.family"),
    ({"resolution": 16}, "parameters.resolution"),
    ({"resolution": 1024}, "parameters.resolution"),
    ({"resolution": "fine"}, "parameters.resolution"),
    ({"size": 0}, "parameters.size"),
    ({"size": -2.0}, "parameters.size"),
    ({"size": 1e-30}, "parameters.size"),  # every vertex was one point
    ({"lods": 0}, "parameters.lods"),
    ({"lods": 9}, "parameters.lods"),
    ({"frames": 1, "interpolate_to": 3}, "parameters.frames"),
    ({"interpolate_to": -1}, "parameters.interpolate_to"),
    ({"interpolate_family": "crate"}, "parameters.interpolate_family"),
    ({"resolution": 128, "interpolate_to": 2, "frames": 100}, "parameters.resolution"),
    ({"shape": "round"}, "parameters.shape"),
]


@pytest.mark.parametrize(("params", "field"), BAD)
def test_bad_parameters_name_the_field(client: Client, params: dict[str, Any], field: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("mesh.props", params, seed=1, fmt="glb")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in dict(field_violations(caught.value)), field_violations(caught.value)


def test_an_image_format_is_refused(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("mesh.props", {}, fmt="png")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "format" in dict(field_violations(caught.value))


def test_the_cli_writes_the_vase_of_the_readme(server: ServerThread, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "museforge.cli", "generate", "mesh.props", "--param", "family=vase",
         "--param", "lods=3", "--format", "glb", "--seed", "42", "-o", str(tmp_path),
         "--server", server.address],
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    [path] = tmp_path.glob("*.glb")
    meshes = lod_meshes(load_glb(path.read_bytes()))
    assert len(meshes) == 3 and all(m.is_watertight for m in meshes)
    assert np.isclose(meshes[0].bounds[0][1], 0.0, atol=1e-5)

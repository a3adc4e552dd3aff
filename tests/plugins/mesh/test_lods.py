"""Levels of detail as served: glTF's node graph per MSFT_lod, and every level standing on y = 0."""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from museforge.client import Client
from museforge.plugins.mesh import meshing
from museforge.plugins.mesh.props_data import truncated_grid
from museforge.plugins.mesh.shapes import FAMILIES


def gltf_json(fmt: str, data: bytes) -> dict[str, Any]:
    if fmt == "gltf":
        return dict(json.loads(data))
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return dict(json.loads(data[20:20 + length]))


def lod_ids(node: dict[str, Any]) -> list[int]:
    return list(node.get("extensions", {}).get("MSFT_lod", {}).get("ids", []))


def visits(document: dict[str, Any], follow_lods: bool) -> Counter[int]:
    """How often each node is reached from the scene roots: by children, and by MSFT_lod ids if asked.

    A loader that knows MSFT_lod (Babylon.js) follows both and refuses a node reached twice;
    one that does not follows children only.
    """
    seen: Counter[int] = Counter()
    stack = [n for scene in document["scenes"] for n in scene["nodes"]]
    while stack:
        index = stack.pop()
        seen[index] += 1
        if seen[index] > 1:
            continue  # reported by the caller; do not walk a cycle forever
        node = document["nodes"][index]
        stack += node.get("children", []) + (lod_ids(node) if follow_lods else [])
    return seen


def check_lod_graph(document: dict[str, Any], levels: int, name: str) -> None:
    nodes = document["nodes"]
    with_lods, without = visits(document, follow_lods=True), visits(document, follow_lods=False)
    # Every node reached exactly once by an MSFT_lod loader: no node twice, none left over.
    assert sorted(with_lods) == list(range(len(nodes))) and set(with_lods.values()) == {1}, with_lods
    holders = [i for i, node in enumerate(nodes) if lod_ids(node)]
    lower = [i for holder in holders for i in lod_ids(nodes[holder])]
    children = [c for node in nodes for c in node.get("children", [])]
    # The coarser levels hang off LOD0's MSFT_lod alone: no node lists them as children,
    # so a loader without the extension sees LOD0 and nothing else.
    assert not set(lower) & set(children)
    shown = [nodes[i]["name"] for i in without if "mesh" in nodes[i]]
    assert shown == [f"{name}_LOD0"]
    if levels == 1:
        assert not holders and "extensionsUsed" not in document
        return
    assert [nodes[i]["name"] for i in holders] == [f"{name}_LOD0"]
    assert [nodes[i]["name"] for i in lower] == [f"{name}_LOD{n}" for n in range(1, levels)]
    assert document["extensionsUsed"] == ["MSFT_lod"] and "extensionsRequired" not in document


@pytest.mark.parametrize(("fmt", "family", "lods", "seed"), [
    ("glb", "vase", 3, 3), ("glb", "rock", 4, 7), ("gltf", "crate", 2, 5), ("gltf", "column", 1, 0)])
def test_lower_lods_are_reached_only_through_msft_lod(client: Client, fmt: str, family: str, lods: int,
                                                      seed: int) -> None:
    params = {"family": family, "lods": lods, "resolution": 40}
    [artifact] = client.generate("mesh.props", params, seed=seed, fmt=fmt).artifacts
    document = gltf_json(fmt, artifact.data)
    check_lod_graph(document, lods, f"{family}-{seed}-0")
    assert len(document["meshes"]) == lods


def lowest_y_per_level(document: dict[str, Any], blob: bytes) -> list[float]:
    lows = []
    for mesh in document["meshes"]:
        accessor = document["accessors"][mesh["primitives"][0]["attributes"]["POSITION"]]
        view = document["bufferViews"][accessor["bufferView"]]
        positions = np.frombuffer(blob, "<f4", accessor["count"] * 3, view["byteOffset"]).reshape(-1, 3)
        assert accessor["min"][1] == float(positions[:, 1].min())
        lows.append(float(positions[:, 1].min()))
    return lows


@pytest.mark.parametrize(("params", "seed"), [
    ({"family": "vase", "lods": 4}, 3),
    ({"family": "crate", "resolution": 32, "lods": 4}, 5),
    ({"family": "rock", "size": 1000.0, "lods": 2}, 7),
    ({"family": "mushroom", "size": 0.01, "resolution": 48, "lods": 3}, 2),
])
def test_every_served_lod_stands_on_the_ground(client: Client, params: dict[str, Any], seed: int) -> None:
    data = client.generate("mesh.props", params, seed=seed, fmt="glb").artifacts[0].data
    json_length = struct.unpack_from("<I", data, 12)[0]
    blob = data[28 + json_length:]
    assert lowest_y_per_level(gltf_json("glb", data), blob) == [0.0] * params["lods"]


@pytest.mark.parametrize("family", FAMILIES)
def test_meshed_levels_stand_on_the_ground_at_every_size(family: str) -> None:
    for index, size in enumerate((0.001, 1.0, 1000.0)):
        field = truncated_grid(family, "held_out", index)
        levels = meshing.mesh_field(field, 48, size=size, lods=4)
        assert [float(level.vertices[:, 1].min()) for level in levels] == [0.0] * 4, (family, size)
        # Only y moves: the levels keep LOD0's footprint, so they still line up.
        for level in levels[1:]:
            np.testing.assert_allclose(level.vertices[:, [0, 2]].min(axis=0),
                                       levels[0].vertices[:, [0, 2]].min(axis=0), atol=0.03 * size)


def documented_bands() -> dict[str, tuple[float, float]]:
    """Family -> (low, high) factor of resolution^2 from docs/mesh.md's triangle-count table."""
    text = (Path(__file__).parents[3] / "docs" / "mesh.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\w+) \| ([\d.]+)–([\d.]+) × resolution² \|", text, re.MULTILINE)
    return {family: (float(low), float(high)) for family, low, high in rows}


def test_lod0_triangle_counts_are_in_the_documented_band(client: Client) -> None:
    bands = documented_bands()
    assert sorted(bands) == sorted(FAMILIES)
    for family in FAMILIES:
        for seed, resolution in ((0, 32), (1, 48)):
            reply = client.generate("mesh.props", {"family": family, "resolution": resolution}, seed=seed,
                                    fmt="stl")
            faces = int(reply.artifacts[0].metadata["x.faces"])
            low, high = bands[family]
            assert low <= faces / resolution**2 <= high, (family, seed, resolution, faces)

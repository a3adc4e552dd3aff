"""Meshing real procedural fields: one closed solid, outward faces, grounded, metres, LODs."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from museforge.plugins.mesh import meshing
from museforge.plugins.mesh.props_data import truncated_grid
from museforge.plugins.mesh.shapes import FAMILIES


def as_trimesh(level: object) -> trimesh.Trimesh:
    return trimesh.Trimesh(level.vertices, level.faces, process=False)  # type: ignore[attr-defined]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("resolution", [32, 80])
def test_every_family_meshes_watertight_outward_and_placed(family: str, resolution: int) -> None:
    field = truncated_grid(family, "held_out", 3)
    [level] = meshing.mesh_field(field, resolution, size=2.5, lods=1)
    mesh = as_trimesh(level)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert meshing.is_watertight(level.faces.astype(np.int64))
    assert mesh.volume > 0  # faces wound outwards
    low, high = level.vertices.min(axis=0), level.vertices.max(axis=0)
    assert low[1] == pytest.approx(0.0, abs=1e-6)  # standing on the ground
    assert (high - low).max() == pytest.approx(2.5, rel=1e-5)  # the largest side is `size` metres
    assert abs(low[0] + high[0]) < 1e-5 and abs(low[2] + high[2]) < 1e-5  # centred in x and z
    # Vertex normals agree with trimesh's own from the (outward) faces.
    agreement = np.einsum("ij,ij->i", level.normals, mesh.vertex_normals)
    assert np.mean(agreement > 0.9) > 0.99
    assert np.allclose(np.linalg.norm(level.normals, axis=1), 1.0, atol=1e-4)


def test_the_solid_matches_the_field_it_came_from() -> None:
    # The meshed volume equals the volume of the field's inside (scaled to metres).
    field = truncated_grid("crate", "held_out", 0, resolution=64)
    [level] = meshing.mesh_field(field, 64, size=1.0, lods=1)
    inside_cube_units = float((field < 0).sum()) * (2.0 / 64) ** 3
    extent = level.vertices.max(axis=0) - level.vertices.min(axis=0)
    raw = meshing.surface(field)
    raw_extent = raw.vertices.max(axis=0) - raw.vertices.min(axis=0)
    metres_per_unit = 1.0 / float(raw_extent.max())
    assert as_trimesh(level).volume == pytest.approx(inside_cube_units * metres_per_unit**3, rel=0.05)
    assert float(extent.max()) == pytest.approx(1.0, rel=1e-5)


def test_lods_halve_the_faces_stay_watertight_and_keep_the_shape() -> None:
    field = truncated_grid("column", "held_out", 2)
    levels = meshing.mesh_field(field, 96, size=1.0, lods=4)
    faces = [len(level.faces) for level in levels]
    for coarse, fine in zip(faces[1:], faces[:-1], strict=True):
        assert 0.4 * fine <= coarse <= 0.6 * fine
    volumes = [as_trimesh(level).volume for level in levels]
    for level, volume in zip(levels, volumes, strict=True):
        assert as_trimesh(level).is_watertight
        assert volume == pytest.approx(volumes[0], rel=0.05)
    # Same transform for every level: the boxes line up.
    for level in levels[1:]:
        assert np.allclose(level.vertices.min(axis=0), levels[0].vertices.min(axis=0), atol=0.02)


def test_a_stray_blob_is_dropped_and_an_empty_field_refused() -> None:
    field = truncated_grid("vase", "held_out", 1)
    with_blob = field.copy()
    with_blob[1:4, 28:31, 1:4] = -1.0  # a separate lump in a top corner
    [level] = meshing.mesh_field(with_blob, 32, size=1.0, lods=1)
    [clean] = meshing.mesh_field(field, 32, size=1.0, lods=1)
    assert len(as_trimesh(level).split(only_watertight=False)) == 1
    assert len(level.faces) == len(clean.faces)
    with pytest.raises(meshing.EmptyShape):
        meshing.mesh_field(np.ones((32, 32, 32), np.float32), 32, 1.0, 1)
    with pytest.raises(ValueError, match="resolution"):
        meshing.mesh_field(field, 200, 1.0, 1)


def test_separable_resampling_equals_the_3d_spline() -> None:
    field = truncated_grid("mushroom", "held_out", 0)
    for resolution in (48, 128):
        reference = ndimage.zoom(field, resolution / 32, order=3, mode="nearest", grid_mode=True)
        assert np.abs(meshing.resample(field, resolution) - reference).max() < 1e-4


def test_the_watertight_check_catches_a_hole_and_a_flipped_face() -> None:
    box = trimesh.creation.box()
    faces = np.asarray(box.faces, np.int64)
    assert meshing.is_watertight(faces)
    assert not meshing.is_watertight(faces[1:])
    flipped = faces.copy()
    flipped[0] = flipped[0, ::-1]
    assert not meshing.is_watertight(flipped)


def test_a_tiny_prop_still_gets_every_level_it_asks_for() -> None:
    axis = (np.arange(32) + 0.5) * (2 / 32) - 1
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    field = np.clip((np.sqrt(x**2 + y**2 + z**2) - 0.1) / 0.1875, -1, 1).astype(np.float32)
    levels = meshing.mesh_field(field, 32, size=0.2, lods=4)
    assert len(levels) == 4  # too small to decimate: the coarsest level repeats
    assert all(as_trimesh(level).is_watertight for level in levels)


def test_a_vertex_on_zero_area_triangles_only_gets_its_neighbours_normal() -> None:
    # A tetrahedron plus vertex 4 on top of vertex 0, used only by two zero-area slivers.
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], float)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3], [4, 0, 1], [0, 4, 2]])
    normals = meshing.vertex_normals(vertices, faces)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-12)
    assert normals[4] @ (vertices[4] - vertices[:4].mean(axis=0)) > 0  # outwards, as its neighbours' do

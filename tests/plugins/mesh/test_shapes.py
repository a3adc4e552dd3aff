"""The procedural prop families: real distance fields, inside the cube, seeded, varied, split."""

from __future__ import annotations

import numpy as np
import pytest

from museforge.plugins.mesh import shapes

RESOLUTION = 40
CELL = 2.0 / RESOLUTION


def grid(family: str, index: int = 0, split: str = "train") -> np.ndarray:
    return shapes.make_shape(family, split, index).grid(RESOLUTION)


@pytest.mark.parametrize("family", shapes.FAMILIES)
def test_each_shape_is_a_closed_solid_inside_the_cube(family: str) -> None:
    for index in range(4):
        field = grid(family, index)
        assert field.shape == (RESOLUTION,) * 3 and field.dtype == np.float32
        assert np.isfinite(field).all()
        assert 0.01 < np.mean(field < 0) < 0.5  # a solid, not empty, not the whole cube
        faces = [field[0], field[-1], field[:, 0], field[:, -1], field[:, :, 0], field[:, :, -1]]
        assert min(float(f.min()) for f in faces) > CELL  # a margin to every face of the cube


@pytest.mark.parametrize("family", shapes.FAMILIES)
def test_it_stands_on_the_floor_and_stays_under_the_top(family: str) -> None:
    axis = shapes.grid_axis(RESOLUTION)
    for index in range(4):
        inside_y = axis[np.nonzero((grid(family, index) < 0).any(axis=(0, 2)))[0]]
        assert inside_y.min() == pytest.approx(shapes.FLOOR, abs=2 * CELL)
        assert inside_y.max() <= shapes.TOP + CELL


@pytest.mark.parametrize("family", shapes.FAMILIES)
def test_the_field_is_a_distance_near_the_surface(family: str) -> None:
    # Marching cubes and the VAE both read the samples as distances: the gradient near
    # the surface must be about 1 (first-order fields stray a little either way).
    for split in shapes.SPLITS:
        for index in range(8):
            field = grid(family, index, split).astype(np.float64)
            gradient = np.linalg.norm(np.stack(list(np.gradient(field, CELL))), axis=0)
            near = np.abs(field) < 3 * CELL
            assert 0.6 < float(np.median(gradient[near])) < 1.15, (split, index)
            assert float(np.percentile(gradient[near], 99)) < 1.75, (split, index)


def test_shapes_are_seeded_varied_and_the_splits_disjoint() -> None:
    for family in shapes.FAMILIES:
        again = shapes.make_shape(family, "train", 3)
        assert np.array_equal(again.grid(24), shapes.make_shape(family, "train", 3).grid(24))
        fields = [grid(family, i) < 0 for i in range(4)] + [grid(family, i, "held_out") < 0 for i in range(4)]
        for i in range(len(fields)):
            for j in range(i + 1, len(fields)):
                iou = np.sum(fields[i] & fields[j]) / np.sum(fields[i] | fields[j])
                assert iou < 0.97, f"{family} {i} and {j} are nearly the same shape"
        train = shapes.make_shape(family, "train", 0).parameters
        held = shapes.make_shape(family, "held_out", 0).parameters
        assert train != held


def test_families_differ_from_each_other() -> None:
    # The mean occupancy of each family (over a few shapes) is unlike every other's.
    means = {f: np.mean([grid(f, i) < 0 for i in range(4)], axis=0) for f in shapes.FAMILIES}
    for a in shapes.FAMILIES:
        for b in shapes.FAMILIES:
            if a < b:
                assert np.abs(means[a] - means[b]).mean() > 0.02, (a, b)


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="family must be one of"):
        shapes.make_shape("teapot", "train", 0)
    with pytest.raises(ValueError, match="split"):
        shapes.make_shape("rock", "test", 0)
    with pytest.raises(ValueError, match="index"):
        shapes.make_shape("rock", "train", -1)
    with pytest.raises(ValueError, match="resolution"):
        shapes.make_shape("rock", "train", 0).grid(1)

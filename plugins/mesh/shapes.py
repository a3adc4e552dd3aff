"""Seeded procedural prop families as signed distance fields (numpy; the mesh plugin's data).

Every shape lives in the cube [-1, 1]^3, Y up, standing on the plane y = FLOOR with a
margin to every face of the cube, so a grid over the cube always sees the whole surface.
Negative is inside. Each family draws a handful of continuous parameters from a seeded
generator (proportions, profiles, bumps), so a family is a continuum, not a few models.

The fields are built from distance primitives, exact (rounded boxes) or first-order
(ellipsoids, surfaces of revolution divided by their slope, sinusoidal bumps), joined
with smooth unions: the gradient stays near 1 (at most about 1.5 on steep vase profiles
and bumpy rocks), so a grid sample reads as a distance for the VAE and marching cubes.

Training and held-out shapes come from disjoint seed streams (``shape_seed``), so no
held-out shape is ever drawn in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FAMILIES = ("rock", "vase", "crate", "column", "mushroom")
FLOOR = -0.85  # every shape stands on this plane
TOP = 0.85  # and stays below this one
SPLITS = ("train", "held_out")

Points = np.ndarray  # [..., 3] float64: x, y, z
Field = Callable[[Points], np.ndarray]


@dataclass(frozen=True)
class Shape:
    """One procedural prop: its family, the parameters drawn, and its distance function."""

    family: str
    index: int  # within its family and split (see shape_seed)
    parameters: dict[str, float]
    distance: Field

    def grid(self, resolution: int) -> np.ndarray:
        """The field at the centres of a resolution^3 grid over [-1, 1]^3: [x, y, z] float32."""
        return sample_grid(self.distance, resolution)


def grid_axis(resolution: int) -> np.ndarray:
    """Cell-centre coordinates along one axis of a grid over [-1, 1]."""
    if not 2 <= resolution <= 256:
        raise ValueError(f"resolution must be 2-256, got {resolution}")
    return (np.arange(resolution) + 0.5) * (2.0 / resolution) - 1.0


def sample_grid(distance: Field, resolution: int) -> np.ndarray:
    axis = grid_axis(resolution)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    return distance(points).astype(np.float32)


# -- primitives (exact distances unless said otherwise) -----------------------------------------

def box(p: Points, centre: tuple[float, float, float], half: tuple[float, float, float],
        rounding: float = 0.0) -> np.ndarray:
    """A box with edges rounded by ``rounding`` (its outer size stays ``half``)."""
    q = np.abs(p - np.asarray(centre)) - (np.asarray(half) - rounding)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    inside = np.minimum(q.max(axis=-1), 0.0)
    return outside + inside - rounding


def capped(radial: np.ndarray, axial: np.ndarray) -> np.ndarray:
    """Intersection of an infinite solid of revolution with a slab, as an exact 2-D box distance."""
    outside = np.hypot(np.maximum(radial, 0.0), np.maximum(axial, 0.0))
    return outside + np.minimum(np.maximum(radial, axial), 0.0)


def revolution(p: Points, base: float, top: float, radius: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A solid of revolution with profile ``radius(y)`` between two planes (first-order).

    rho - r(y) is divided by sqrt(1 + r'(y)^2), the first-order distance to a sloped profile.
    """
    y = p[..., 1]
    clipped = np.clip(y, base, top)
    step = 1e-3
    slope = (radius(clipped + step) - radius(clipped - step)) / (2 * step)
    radial = (np.hypot(p[..., 0], p[..., 2]) - radius(clipped)) / np.sqrt(1.0 + slope**2)
    axial = np.abs(y - 0.5 * (top + base)) - 0.5 * (top - base)
    return capped(radial, axial)


def smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Union blended over a radius ``k`` (polynomial smooth minimum)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


# -- families -----------------------------------------------------------------------------------

def rock(rng: np.random.Generator) -> tuple[dict[str, float], Field]:
    """A lumpy boulder: a squashed ellipsoid with low-frequency bumps, sitting on the floor."""
    rx, ry, rz = rng.uniform(0.5, 0.75), rng.uniform(0.35, 0.6), rng.uniform(0.45, 0.72)
    yaw = rng.uniform(0.0, np.pi)
    waves = rng.normal(size=(5, 3))
    waves /= np.linalg.norm(waves, axis=1, keepdims=True)
    frequencies = rng.uniform(2.0, 4.5, 5)
    phases = rng.uniform(0.0, 2 * np.pi, 5)
    bump = rng.uniform(0.03, 0.07)
    centre_y = FLOOR + ry * 0.92  # sunk a little, as a rock settles

    def distance(p: Points) -> np.ndarray:
        c, s = np.cos(yaw), np.sin(yaw)
        x = c * p[..., 0] - s * p[..., 2]
        z = s * p[..., 0] + c * p[..., 2]
        y = p[..., 1] - centre_y
        scaled = np.stack([x / rx, y / ry, z / rz], axis=-1)
        k0 = np.linalg.norm(scaled, axis=-1)
        k1 = np.linalg.norm(scaled / np.array([rx, ry, rz]), axis=-1)
        ellipsoid = k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)  # the usual first-order ellipsoid distance
        direction = np.stack([x, y, z], axis=-1)
        lumps = np.sin(direction @ waves.T * frequencies + phases).sum(axis=-1) / np.sqrt(5.0)
        body = ellipsoid + bump * lumps
        return np.maximum(body, FLOOR - p[..., 1])  # flat underside on the floor

    return {"rx": rx, "ry": ry, "rz": rz, "yaw": yaw, "bump": bump}, distance


def vase(rng: np.random.Generator) -> tuple[dict[str, float], Field]:
    """A turned vase: foot, belly and neck from a smooth random profile, with a lip."""
    height = rng.uniform(1.2, TOP - FLOOR)
    top = FLOOR + height
    foot = rng.uniform(0.16, 0.3)
    belly = rng.uniform(0.36, 0.6)
    belly_at = rng.uniform(0.25, 0.55)  # fraction of the height
    neck = rng.uniform(0.1, 0.22)
    lip = neck + rng.uniform(0.03, 0.14)

    def radius(y: np.ndarray) -> np.ndarray:
        t = np.clip((y - FLOOR) / height, 0.0, 1.0)
        # Smooth interpolation through (0, foot), (belly_at, belly), (0.85, neck), (1, lip).
        knots = np.array([0.0, belly_at, 0.85, 1.0])
        values = np.array([foot, belly, neck, lip])
        index = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, 2)
        u = (t - knots[index]) / (knots[index + 1] - knots[index])
        u = u * u * (3 - 2 * u)
        return values[index] + (values[index + 1] - values[index]) * u

    def distance(p: Points) -> np.ndarray:
        return revolution(p, FLOOR, top, radius)

    return {"height": height, "foot": foot, "belly": belly, "belly_at": belly_at, "neck": neck,
            "lip": lip}, distance


def crate(rng: np.random.Generator) -> tuple[dict[str, float], Field]:
    """A wooden crate: a bevelled box with raised frame boards round each face."""
    hx, hy, hz = rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.75), rng.uniform(0.4, 0.8)
    bevel = rng.uniform(0.02, 0.08)
    board = rng.uniform(0.08, 0.16)  # frame board width
    inset = rng.uniform(0.03, 0.06)  # how far the panels sit behind the frame
    centre = (0.0, FLOOR + hy, 0.0)

    def distance(p: Points) -> np.ndarray:
        outer = box(p, centre, (hx, hy, hz), bevel)
        # Panels: recess each face inside its frame (a box cut from the outside of each face).
        cut = np.full(p.shape[:-1], np.inf)
        for axis in range(3):
            half = [hx - board, hy - board, hz - board]
            half[axis] = inset
            for sign in (-1.0, 1.0):
                at = list(centre)
                at[axis] += sign * ((hx, hy, hz)[axis])
                cut = np.minimum(cut, box(p, (at[0], at[1], at[2]), (half[0], half[1], half[2])))
        return np.maximum(outer, -cut)

    return {"hx": hx, "hy": hy, "hz": hz, "bevel": bevel, "board": board, "inset": inset}, distance


def column(rng: np.random.Generator) -> tuple[dict[str, float], Field]:
    """A classical column: square plinth, fluted tapering shaft, square capital."""
    plinth_half = rng.uniform(0.32, 0.5)
    plinth_h = rng.uniform(0.08, 0.16)
    capital_half = plinth_half * rng.uniform(0.85, 1.05)
    capital_h = rng.uniform(0.07, 0.14)
    shaft_r = plinth_half * rng.uniform(0.5, 0.72)
    taper = rng.uniform(0.75, 0.95)
    flutes = int(rng.integers(8, 17))
    flute_depth = rng.uniform(0.0, 0.03)
    top = TOP - rng.uniform(0.0, 0.25)
    shaft_base, shaft_top = FLOOR + plinth_h, top - capital_h

    def shaft_radius(y: np.ndarray) -> np.ndarray:
        t = np.clip((y - shaft_base) / (shaft_top - shaft_base), 0.0, 1.0)
        return shaft_r * (1.0 - (1.0 - taper) * t)

    def distance(p: Points) -> np.ndarray:
        angle = np.arctan2(p[..., 2], p[..., 0])
        shaft = revolution(p, shaft_base - 0.02, shaft_top + 0.02, shaft_radius)
        shaft = shaft + flute_depth * 0.5 * (1.0 + np.cos(flutes * angle))
        plinth = box(p, (0.0, FLOOR + plinth_h / 2, 0.0), (plinth_half, plinth_h / 2, plinth_half), 0.015)
        capital = box(p, (0.0, top - capital_h / 2, 0.0), (capital_half, capital_h / 2, capital_half), 0.015)
        return smooth_union(shaft, np.minimum(plinth, capital), 0.04)

    return {"plinth_half": plinth_half, "plinth_h": plinth_h, "capital_half": capital_half,
            "capital_h": capital_h, "shaft_r": shaft_r, "taper": taper, "flutes": float(flutes),
            "flute_depth": flute_depth, "top": top}, distance


def mushroom(rng: np.random.Generator) -> tuple[dict[str, float], Field]:
    """A toadstool: a tapering stem and a domed cap (sheared sideways), blended where they meet."""
    stem_r = rng.uniform(0.1, 0.22)
    stem_h = rng.uniform(0.55, 1.05)
    cap_r = rng.uniform(0.45, 0.8)
    cap_h = rng.uniform(0.22, 0.5)
    cap_y = FLOOR + stem_h
    tilt = rng.uniform(-0.15, 0.15)
    blend = rng.uniform(0.04, 0.1)

    def stem_radius(y: np.ndarray) -> np.ndarray:
        t = np.clip((y - FLOOR) / stem_h, 0.0, 1.0)
        return stem_r * (1.25 - 0.35 * t)  # a wider foot

    def distance(p: Points) -> np.ndarray:
        stem = revolution(p, FLOOR, cap_y, stem_radius)
        # Cap: the upper half of an oblate ellipsoid (scaled by its smaller radius, so
        # under-estimating), sheared sideways by ``tilt``.
        x = p[..., 0] - tilt * (p[..., 1] - cap_y)
        q = np.stack([x / cap_r, (p[..., 1] - cap_y) / cap_h, p[..., 2] / cap_r], axis=-1)
        k0 = np.linalg.norm(q, axis=-1)
        dome = (k0 - 1.0) * min(cap_r, cap_h)
        cap = np.maximum(dome, cap_y - 0.04 - p[..., 1])
        return smooth_union(stem, cap, blend)

    return {"stem_r": stem_r, "stem_h": stem_h, "cap_r": cap_r, "cap_h": cap_h, "tilt": tilt,
            "blend": blend}, distance


BUILDERS: dict[str, Callable[[np.random.Generator], tuple[dict[str, float], Field]]] = {
    "rock": rock, "vase": vase, "crate": crate, "column": column, "mushroom": mushroom,
}


def shape_seed(family: str, split: str, index: int) -> list[int]:
    """The seed sequence of the ``index``-th shape of a family in a split (disjoint streams)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    return [FAMILIES.index(family), SPLITS.index(split), index]


def make_shape(family: str, split: str, index: int) -> Shape:
    """The ``index``-th procedural shape of ``family`` in ``split`` (always the same one)."""
    seed = shape_seed(family, split, index)
    parameters, distance = BUILDERS[family](np.random.default_rng(seed))
    return Shape(family, index, parameters, distance)

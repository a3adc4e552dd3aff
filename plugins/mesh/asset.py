"""What the mesh generator yields as ``Media.data``: a prop with its levels of detail (numpy only).

Units are metres, Y up, the prop standing on y = 0 and centred on the vertical axis
(x = z = 0 at the middle of its footprint). Triangles wind counter-clockwise seen
from outside (glTF's convention), so face normals point out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MeshLevel:
    """One level of detail: ``vertices`` [V, 3] float32, ``faces`` [F, 3] uint32, ``normals`` [V, 3]."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray

    def __post_init__(self) -> None:
        v, f, n = self.vertices, self.faces, self.normals
        if v.ndim != 2 or v.shape[1] != 3 or v.dtype != np.float32:
            raise ValueError(f"vertices must be [V, 3] float32, got {v.shape} {v.dtype}")
        if f.ndim != 2 or f.shape[1] != 3 or f.dtype != np.uint32:
            raise ValueError(f"faces must be [F, 3] uint32, got {f.shape} {f.dtype}")
        if n.shape != v.shape or n.dtype != np.float32:
            raise ValueError(f"normals must match vertices ({v.shape} float32), got {n.shape} {n.dtype}")
        if len(f) and int(f.max()) >= len(v):
            raise ValueError("faces index past the last vertex")


@dataclass(frozen=True)
class MeshAsset:
    """A prop: ``levels[0]`` is the full mesh, each later level a coarser stand-in for it."""

    name: str  # e.g. "vase-42": node and mesh names in the file derive from it
    levels: tuple[MeshLevel, ...]

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("a mesh asset needs at least one level")

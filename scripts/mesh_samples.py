"""Pictures of mesh.props output, rendered from the GLB files the real Engine writes.

    python scripts/mesh_samples.py [--output docs/mesh]

Writes three sheets: four seeds of each family; one vase with its three levels of
detail (wireframes, triangle counts in the labels); a cross-family morph. Each mesh is
read back from the GLB with trimesh (an independent reader) and drawn with matplotlib,
flat-shaded from a fixed light, so what you see is what a game engine imports.
"""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import trimesh

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from museforge.config import Settings
from museforge.engine.catalogue import Engine
from museforge.plugins.mesh.shapes import FAMILIES

LIGHT = np.array([0.4, 0.8, 0.45]) / np.linalg.norm([0.4, 0.8, 0.45])


def lods_of(engine: Engine, params: dict[str, Any], seed: int) -> list[list[trimesh.Trimesh]]:
    """Every artifact's levels of detail, read back from GLB (LOD0 first)."""
    out = []
    for artifact in engine.generate("mesh.props", params, seed=seed, fmt="glb"):
        scene = trimesh.load(io.BytesIO(artifact.data), file_type="glb")
        assert isinstance(scene, trimesh.Scene)
        nodes = sorted(scene.graph.nodes_geometry, key=lambda n: int(n.rsplit("_LOD", 1)[1]))
        out.append([scene.geometry[scene.graph[n][1]] for n in nodes])
    return out


def draw(ax: Any, mesh: trimesh.Trimesh, title: str, wire: bool = False) -> None:
    # Matplotlib's axes are z-up: show the mesh's y (up) as the plot's z.
    v = np.asarray(mesh.vertices)[:, [0, 2, 1]]
    triangles = v[mesh.faces]
    shade = 0.35 + 0.65 * np.clip(np.asarray(mesh.face_normals)[:, [0, 2, 1]] @ LIGHT, 0, 1)
    colours = np.stack([shade * 0.85, shade * 0.8, shade * 0.72, np.ones_like(shade)], axis=1)
    ax.add_collection3d(Poly3DCollection(triangles, facecolors=colours,
                                         edgecolors=(0, 0, 0, 0.35) if wire else None,
                                         linewidths=0.2 if wire else 0))
    half = float(np.ptp(v, axis=0).max()) / 2
    centre = (v.max(axis=0) + v.min(axis=0)) / 2
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre, strict=True):
        setter(c - half, c + half)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=18, azim=-60)
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)


def families_sheet(engine: Engine, path: Path, seeds: int = 4) -> None:
    fig = plt.figure(figsize=(2.2 * seeds, 2.2 * len(FAMILIES)))
    for row, family in enumerate(FAMILIES):
        for col in range(seeds):
            [levels] = lods_of(engine, {"family": family, "resolution": 64}, seed=col + 1)
            ax = fig.add_subplot(len(FAMILIES), seeds, row * seeds + col + 1, projection="3d")
            draw(ax, levels[0], f"{family}, seed {col + 1}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def lods_sheet(engine: Engine, path: Path) -> None:
    [levels] = lods_of(engine, {"family": "vase", "lods": 3}, seed=42)
    fig = plt.figure(figsize=(9, 3.2))
    for k, mesh in enumerate(levels):
        ax = fig.add_subplot(1, len(levels), k + 1, projection="3d")
        draw(ax, mesh, f"vase seed 42, LOD{k}: {len(mesh.faces)} triangles, "
             f"{'watertight' if mesh.is_watertight else 'OPEN'}", wire=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def morph_sheet(engine: Engine, path: Path, frames: int = 6) -> None:
    walk = lods_of(engine, {"family": "vase", "interpolate_family": "mushroom", "interpolate_to": 9,
                            "frames": frames, "resolution": 64}, seed=4)
    fig = plt.figure(figsize=(2.2 * frames, 2.4))
    for k, levels in enumerate(walk):
        ax = fig.add_subplot(1, frames, k + 1, projection="3d")
        draw(ax, levels[0], f"frame {k}")
    fig.suptitle("vase (seed 4) to mushroom (seed 9)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("docs/mesh"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.output.mkdir(parents=True, exist_ok=True)
    engine = Engine(Settings(plugins=["mesh"])).start()
    try:
        families_sheet(engine, args.output / "props_families.png")
        lods_sheet(engine, args.output / "props_lods.png")
        morph_sheet(engine, args.output / "props_morph.png")
    finally:
        engine.close()
    print(f"wrote {args.output}/props_families.png, props_lods.png, props_morph.png")


if __name__ == "__main__":
    main()

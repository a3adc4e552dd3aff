"""``python -m bench.mesh``: milliseconds per prop, and where they go, at 32^3, 64^3 and 128^3.

Two views side by side, median over the five families x ``--repeats`` seeds:

- in process, stage by stage, on the shipped decoder: the ONNX Runtime run (one 32^3
  grid), then meshing split into resampling to the requested grid, marching cubes
  (largest component and padding included), levels of detail, placement with normals,
  and the GLB encoding;
- end to end: unary ``Generate`` (GLB) against a real ``museforge serve`` subprocess.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np
import onnxruntime as ort

from museforge import Media
from museforge.client import Client
from museforge.plugins.mesh import meshing
from museforge.plugins.mesh.asset import MeshAsset
from museforge.plugins.mesh.formats import MESH_ENCODERS
from museforge.plugins.mesh.props import LATENT_DIM, MODELS_DIR
from museforge.plugins.mesh.shapes import FAMILIES
from museforge.runtime.manifest import verify

from .report import table
from .servers import ServerSettings, museforge_server, wait_serving

RESOLUTIONS = (32, 64, 128)
STAGES = ("network", "resample", "marching cubes", "lods", "place + normals", "glb")


class Stopwatch:
    """Milliseconds per stage, appended as each stage ends."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.times.setdefault(stage, []).append((now - self.last) * 1000)
        self.last = now


def in_process(session: ort.InferenceSession, resolution: int, lods: int, repeats: int) -> dict[str, float]:
    glb = next(e for e in MESH_ENCODERS if e.name == "glb")
    watch = Stopwatch()
    for seed in range(repeats):
        for k in range(len(FAMILIES)):
            latent = np.random.default_rng(seed).standard_normal((1, LATENT_DIM)).astype(np.float32)
            family = np.eye(len(FAMILIES), dtype=np.float32)[[k]]
            watch.lap("setup")
            grid = session.run(None, {"latent": latent, "family": family})[0][0]
            watch.lap("network")
            fine = meshing.resample(grid, resolution)
            watch.lap("resample")
            full = meshing.surface(meshing.keep_largest_inside(fine))
            watch.lap("marching cubes")
            levels = meshing.levels_of_detail(fine, full, lods)
            watch.lap("lods")
            placed = meshing.place(levels, 1.0)
            watch.lap("place + normals")
            glb.encode(Media("mesh", MeshAsset("bench", tuple(placed)), 0), {"generator": "mesh.props"})
            watch.lap("glb")
    return {stage: statistics.median(values) for stage, values in watch.times.items()}


def end_to_end(client: Client, resolution: int, lods: int, repeats: int) -> float:
    times = []
    for seed in range(repeats):
        for family in FAMILIES:
            params: dict[str, Any] = {"family": family, "resolution": resolution, "lods": lods}
            start = time.perf_counter()
            client.generate("mesh.props", params, seed=seed, fmt="glb")
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mesh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="seeds per family and row (median reported)")
    parser.add_argument("--lods", type=int, default=3, help="levels of detail per prop (default 3)")
    args = parser.parse_args(argv)
    _, data = verify(MODELS_DIR / "1")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    stages = {r: in_process(session, r, args.lods, args.repeats) for r in RESOLUTIONS}
    with museforge_server(ServerSettings()) as server:
        wait_serving(server)
        with Client(server.address, timeout=300) as client:
            client.generate("mesh.props", {"resolution": 32}, seed=0, fmt="glb")  # warm-up
            served = {r: end_to_end(client, r, args.lods, args.repeats) for r in RESOLUTIONS}
    rows = []
    for r in RESOLUTIONS:
        parts = stages[r]
        meshing_ms = sum(parts[s] for s in STAGES[1:])
        rows.append([f"{r}^3", *(f"{parts[s]:.1f}" for s in STAGES), f"{meshing_ms:.1f}",
                     f"{parts['network'] + meshing_ms:.1f}", f"{served[r]:.1f}"])
    print(f"mesh.props, {args.lods} LODs, GLB; median ms over {len(FAMILIES)} families "
          f"x {args.repeats} seeds")
    print(table(rows, ["grid", *STAGES, "meshing (sum)", "in-process total", "Generate (gRPC)"],
                right=set(range(1, 10))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``mesh.props``: game-ready props sampled from the shape VAE and meshed (no torch).

The ONNX decoder turns a Gaussian draw and a family into a 32^3 distance grid; the
meshing module makes it a watertight, grounded, metre-scaled mesh with levels of
detail; the mesh encoders write GLB, glTF, OBJ, PLY, STL or USD.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationInfo, model_validator

from museforge import (
    GenerationContext,
    Generator,
    LimitExceeded,
    Media,
    ModelSource,
    OutputEstimate,
    Progress,
    Variations,
    latents,
    request_count,
)

from .asset import MeshAsset
from .meshing import MAX_RESOLUTION, MIN_RESOLUTION, EmptyShape, mesh_field
from .shapes import FAMILIES

MODEL = "mesh.props"
MODELS_DIR = Path(__file__).parent / "models" / "props"
LATENT_DIM = 32  # must equal props_net.LATENT (a test checks the shipped manifest)
MAX_LODS = 4
MAX_PROPS = 256  # count x frames per request
MAX_VOXELS = 64 * 128**3  # count x frames x resolution^3 per request: about 30 s of meshing
GRID_FIELDS = ("parameters.resolution", "parameters.frames", "count")
Family = Literal["rock", "vase", "crate", "column", "mushroom"]
assert set(Family.__args__) == set(FAMILIES)  # type: ignore[attr-defined]


class PropsParams(Variations):
    """Parameters of mesh.props.

    At most 256 props per request (count x frames, frames counting with interpolate_to), and
    at most 134,217,728 grid cells: count x frames x resolution^3.
    """

    family: Family = Field("rock", description="The kind of prop.")
    interpolate_family: Family | None = Field(
        None, description="With interpolate_to: the family the walk ends in (default: `family`), "
        "for morphs from one kind of prop into another.")
    resolution: int = Field(
        64, ge=MIN_RESOLUTION, le=MAX_RESOLUTION,
        description="Marching-cubes grid cells per side; the mesh of LOD0 has 1.3-6.7 x resolution^2 "
        "triangles by family and seed (crates the most, mushrooms and vases the fewest). The model "
        "decodes 32^3 and finer grids follow its smooth field.")
    size: float = Field(
        1.0, ge=0.001, le=1000.0,  # a prop of a millimetre or more (at 1e-30 m every vertex was one)
        description="The largest side of the prop's bounding box, in metres (1 mm to 1 km).")
    lods: int = Field(
        1, ge=1, le=MAX_LODS,
        description="Levels of detail, LOD0 included: each further level has half the triangles "
        "of the one before (GLB/glTF/USD hold them all; OBJ holds them all as objects; PLY and "
        "STL hold LOD0).")


    @model_validator(mode="after")
    def _bounded_work(self, info: ValidationInfo) -> PropsParams:
        props = request_count(info) * self.images_per_item()
        if props > MAX_PROPS:
            raise LimitExceeded(f"count x frames = {props} exceeds {MAX_PROPS} (parameters.frames, count)",
                                ("parameters.frames", "count"))
        if props * self.resolution**3 > MAX_VOXELS:
            raise LimitExceeded(f"count x frames x resolution^3 = {props * self.resolution**3} exceeds "
                                f"{MAX_VOXELS}; lower the resolution or ask for fewer props "
                                f"({', '.join(GRID_FIELDS)})", GRID_FIELDS)
        return self


assert f"{MAX_PROPS} props" in (PropsParams.__doc__ or "")  # the schema states the bounds
assert f"{MAX_VOXELS:,} grid cells" in (PropsParams.__doc__ or "")


def check(params: PropsParams, count: int) -> list[tuple[str, str]]:
    if params.interpolate_family is not None and params.interpolate_to is None:
        return [("parameters.interpolate_family", "needs interpolate_to")]
    return []


def estimate(params: PropsParams, count: int) -> OutputEstimate:
    """The float32 distance grid of every prop (its meshes are smaller)."""
    return OutputEstimate(count * params.images_per_item() * params.resolution**3 * 4, GRID_FIELDS)


def family_weights(params: PropsParams, index: int) -> np.ndarray:
    """The decoder's family input for output ``index``: one-hot, or a blend along a cross-family walk."""
    start = np.eye(len(FAMILIES), dtype=np.float32)[FAMILIES.index(params.family)]
    if params.interpolate_to is None or params.interpolate_family is None:
        return start
    end = np.eye(len(FAMILIES), dtype=np.float32)[FAMILIES.index(params.interpolate_family)]
    t = (index % params.frames) / (params.frames - 1)
    return ((1.0 - t) * start + t * end).astype(np.float32)


def generate(ctx: GenerationContext, params: PropsParams, seed: int,
             count: int) -> Iterator[Progress | Media]:
    items = list(latents((LATENT_DIM,), seed, count, params))
    total = len(items)
    yield Progress(0, total, "meshing")
    for done, (index, latent) in enumerate(items, start=1):
        family = family_weights(params, index)
        field = ctx.infer(MODEL, {"latent": latent[None], "family": family[None]})["sdf"][0]
        ctx.check_cancelled()
        try:
            levels = mesh_field(field, params.resolution, params.size, params.lods)
        except EmptyShape as exc:  # a draw far out in the tails; say which one
            raise RuntimeError(f"prop {index} decoded to an empty field") from exc
        # The family it is: a morph's last frame across families is wholly the second one.
        pure = FAMILIES[int(np.argmax(family))] if family.max() == 1.0 else None
        name = f"{pure or params.family}-{seed}-{index}"
        yield Media("mesh", MeshAsset(name, tuple(levels)), index, metadata={
            "family": pure or ",".join(f"{f}:{w:.3f}" for f, w in zip(FAMILIES, family, strict=True)
                                       if w > 0),
            "faces": ",".join(str(len(level.faces)) for level in levels),
            "size_m": f"{params.size:g}",
        })
        yield Progress(done, total, "meshing")


PROPS = Generator(
    name="mesh.props",
    modality="mesh",
    parameters=PropsParams,
    generate=generate,
    formats=("glb", "gltf", "obj", "ply", "stl", "usda", "usdz"),
    models=(ModelSource(MODEL, MODELS_DIR),),
    description="Watertight game props (rock, vase, crate, column, mushroom) sampled from a "
    "conditional VAE over signed distance fields, with levels of detail, in metres, Y up; "
    "morphs between seeds and across families with interpolate_to and frames.",
    check=check,
    estimate=estimate,
    latent_shape=lambda params: (LATENT_DIM,),
)

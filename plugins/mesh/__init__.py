"""museforge's built-in 3D plugin: game-ready props from a learned shape space (a VAE over SDFs)."""

from __future__ import annotations

from museforge import Recipe, RegisterEncoder, RegisterGenerator, RegisterRecipe, hookimpl

from .formats import MESH_ENCODERS
from .props import MODELS_DIR, PROPS


@hookimpl
def register_generators(register: RegisterGenerator) -> None:
    register(PROPS)


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    for encoder in MESH_ENCODERS:
        register(encoder)


@hookimpl
def register_recipes(register: RegisterRecipe) -> None:
    register(Recipe(
        name="mesh.props",
        description="Conditional VAE over signed distance grids of five procedural prop families",
        build="museforge.plugins.mesh.props_recipe:build",
        models_dir=MODELS_DIR,
    ))

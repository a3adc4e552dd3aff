"""museforge's built-in video effects (shot boundaries, automatic editing), registered through the
entry point."""

from __future__ import annotations

from museforge import RegisterEffect, RegisterEncoder, RegisterRecipe, hookimpl

from . import autocut, shots
from .video_encoders import VIDEO_ENCODERS


@hookimpl
def register_effects(register: RegisterEffect) -> None:
    register(shots.EFFECT)
    register(autocut.EFFECT)


@hookimpl
def register_recipes(register: RegisterRecipe) -> None:
    for recipe in shots.RECIPES:
        register(recipe)


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    for encoder in VIDEO_ENCODERS:
        register(encoder)

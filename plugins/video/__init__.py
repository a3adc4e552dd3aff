"""museforge's built-in video analysis (shot boundaries), registered through the entry point."""

from __future__ import annotations

from museforge import RegisterEffect, RegisterEncoder, RegisterRecipe, hookimpl

from . import shots
from .shot_lists import SHOT_LIST_ENCODERS


@hookimpl
def register_effects(register: RegisterEffect) -> None:
    register(shots.EFFECT)


@hookimpl
def register_recipes(register: RegisterRecipe) -> None:
    for recipe in shots.RECIPES:
        register(recipe)


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    for encoder in SHOT_LIST_ENCODERS:
        register(encoder)

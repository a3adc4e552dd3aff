"""museforge's built-in effects (media in, media out), registered through the entry point."""

from __future__ import annotations

from museforge import IMAGE_ENCODERS, RegisterEffect, RegisterEncoder, RegisterRecipe, hookimpl

from .registry import EFFECTS, RECIPES


@hookimpl
def register_effects(register: RegisterEffect) -> None:
    for effect in EFFECTS:
        register(effect)


@hookimpl
def register_recipes(register: RegisterRecipe) -> None:
    for recipe in RECIPES:
        register(recipe)


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    # The core's image encoders, which the effects write (the image plugin registers the same
    # objects: a server loading only this plugin must still write png16, jpeg, webp and exr).
    for encoder in IMAGE_ENCODERS:
        register(encoder)

"""museforge's built-in effects (media in, media out), registered through the entry point."""

from __future__ import annotations

from museforge import RegisterEffect, RegisterRecipe, hookimpl

from .registry import EFFECTS, RECIPES


@hookimpl
def register_effects(register: RegisterEffect) -> None:
    for effect in EFFECTS:
        register(effect)


@hookimpl
def register_recipes(register: RegisterRecipe) -> None:
    for recipe in RECIPES:
        register(recipe)

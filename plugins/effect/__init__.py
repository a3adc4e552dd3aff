"""museforge's built-in effects (media in, media out), registered through the entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from museforge import hookimpl

from .registry import EFFECTS, RECIPES


@hookimpl
def register_effects(register: Callable[[Any], None]) -> None:
    for effect in EFFECTS:
        register(effect)


@hookimpl
def register_recipes(register: Callable[[Any], None]) -> None:
    for recipe in RECIPES:
        register(recipe)

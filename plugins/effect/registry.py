"""The effects this plugin ships, and the recipes that train their models (one line each)."""

from __future__ import annotations

from museforge import Effect, Recipe

from . import denoise, interpolate, restore, sketch, stylize, upscale

EFFECTS: tuple[Effect, ...] = (
    upscale.EFFECT, denoise.EFFECT, restore.EFFECT, stylize.EFFECT, interpolate.EFFECT, sketch.EFFECT,
)
RECIPES: tuple[Recipe, ...] = (
    *upscale.RECIPES, *denoise.RECIPES, *restore.RECIPES, *stylize.RECIPES, *interpolate.RECIPES,
    *sketch.RECIPES,
)

"""museforge's built-in image plugin, registered through the ``museforge`` entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from museforge import Recipe, hookimpl

from .digits import DIGITS, MODELS_DIR
from .formats import IMAGE_ENCODERS


@hookimpl
def register_generators(register: Callable[[Any], None]) -> None:
    register(DIGITS)


@hookimpl
def register_encoders(register: Callable[[Any], None]) -> None:
    for encoder in IMAGE_ENCODERS:
        register(encoder)


@hookimpl
def register_recipes(register: Callable[[Any], None]) -> None:
    register(
        Recipe(
            name="image.digits",
            description="Class-conditional GAN (spectral-norm discriminator) on scikit-learn digits",
            build="museforge.plugins.image.digits_recipe:build",
            models_dir=MODELS_DIR,
        )
    )

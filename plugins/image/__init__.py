"""museforge's built-in image plugin, registered through the ``museforge`` entry point."""

from __future__ import annotations

from museforge import IMAGE_ENCODERS, Recipe, RegisterEncoder, RegisterGenerator, RegisterRecipe, hookimpl

from . import faces, texture
from .digits import DIGITS, MODELS_DIR


@hookimpl
def register_generators(register: RegisterGenerator) -> None:
    register(DIGITS)
    register(faces.FACES)
    register(texture.TEXTURE)


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    # The core's image encoders (effects write them too), listed under this plugin.
    for encoder in IMAGE_ENCODERS:
        register(encoder)


@hookimpl
def register_recipes(register: RegisterRecipe) -> None:
    register(
        Recipe(
            name="image.digits",
            description="Class-conditional GAN (spectral-norm critic) on 4,000 real MNIST digits",
            build="museforge.plugins.image.digits_recipe:build",
            models_dir=MODELS_DIR,
        )
    )
    register(
        Recipe(
            name="image.faces",
            description="DCGAN (spectral-norm discriminator, augmentation) on LFW faces",
            build="museforge.plugins.image.faces_recipe:build",
            models_dir=faces.MODELS_DIR,
        )
    )
    register(
        Recipe(
            name="image.texture",
            description="Fully convolutional torus GAN on scikit-image texture photographs",
            build="museforge.plugins.image.texture_recipe:build",
            models_dir=texture.MODELS_DIR,
        )
    )

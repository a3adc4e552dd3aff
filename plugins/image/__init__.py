"""museforge's built-in image plugin, registered through the ``museforge`` entry point."""

from __future__ import annotations

from museforge import IMAGE_ENCODERS, Recipe, RegisterEncoder, RegisterGenerator, RegisterRecipe, hookimpl

from . import faces, icons, texture, tiles
from .digits import DIGITS, MODELS_DIR


@hookimpl
def register_generators(register: RegisterGenerator) -> None:
    register(DIGITS)
    register(faces.FACES)
    register(texture.TEXTURE)
    register(tiles.TILES)
    register(icons.ICONS)


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
    register(
        Recipe(
            name="image.tiles",
            description="Seamless torus GAN on Dungeon Crawl Stone Soup's floor and wall tiles (Debian)",
            build="museforge.plugins.image.tiles_recipe:build",
            models_dir=tiles.MODELS_DIR,
        )
    )
    register(
        Recipe(
            name="image.icons",
            description="Class-conditional RGBA GAN on Google's Noto Emoji (npm emoji-datasource-google)",
            build="museforge.plugins.image.icons_recipe:build",
            models_dir=icons.MODELS_DIR,
        )
    )

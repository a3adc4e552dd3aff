"""museforge's built-in music plugin, registered through the ``museforge`` entry point."""

from __future__ import annotations

from museforge import Recipe, RegisterEncoder, RegisterGenerator, RegisterRecipe, hookimpl

from .audio_formats import AUDIO_ENCODERS
from .harmony import HARMONY_MODEL
from .melody import HARMONY_MODELS_DIR, MELODY, MODELS_DIR


@hookimpl
def register_generators(register: RegisterGenerator) -> None:
    register(MELODY)


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    for encoder in AUDIO_ENCODERS:
        register(encoder)


@hookimpl
def register_recipes(register: RegisterRecipe) -> None:
    register(Recipe(
        name="music.melody",
        description="Style-conditioned GRU on music21's Bach chorales, Essen folksongs and Irish "
                    "fiddle tunes",
        build="museforge.plugins.music.melody_recipe:build",
        models_dir=MODELS_DIR,
    ))
    register(Recipe(
        name=HARMONY_MODEL,
        description="GRU that writes alto, tenor and bass under a melody, trained on music21's Bach chorales",
        build="museforge.plugins.music.harmony_recipe:build",
        models_dir=HARMONY_MODELS_DIR,
    ))

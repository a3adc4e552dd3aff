"""The hooks a museforge plugin may implement (entry-point group ``museforge``).

Every hook receives a ``register`` callback: the core, not the plugin, owns
de-duplication, name clashes and error isolation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import pluggy

from .codecs.encoders import Encoder
from .effect import Effect
from .generator import Generator
from .recipe import Recipe

PROJECT = "museforge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# What each hook's ``register`` accepts: one object per call (the host checks the type too).
RegisterGenerator: TypeAlias = Callable[[Generator], None]
RegisterEffect: TypeAlias = Callable[[Effect], None]
RegisterRecipe: TypeAlias = Callable[[Recipe], None]
RegisterEncoder: TypeAlias = Callable[[Encoder], None]


@hookspec
def register_generators(register: RegisterGenerator) -> None:
    """Register generators (museforge.Generator) that make media from parameters and a seed."""


@hookspec
def register_effects(register: RegisterEffect) -> None:
    """Register effects that turn media into media (film batch effects)."""


@hookspec
def register_recipes(register: RegisterRecipe) -> None:
    """Register training + export recipes (museforge.Recipe) run by `museforge export`."""


@hookspec
def register_encoders(register: RegisterEncoder) -> None:
    """Register output encoders (museforge.Encoder), so a studio can add a format."""

"""The hooks a museforge plugin may implement (entry-point group ``museforge``).

Every hook receives a ``register`` callback: the core, not the plugin, owns
de-duplication, name clashes and error isolation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "museforge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_generators(register: Callable[[Any], None]) -> None:
    """Register generators (museforge.Generator) that make media from parameters and a seed."""


@hookspec
def register_effects(register: Callable[[Any], None]) -> None:
    """Register effects that turn media into media (film batch effects)."""


@hookspec
def register_recipes(register: Callable[[Any], None]) -> None:
    """Register training + export recipes (museforge.export.Recipe) run by `museforge export`."""


@hookspec
def register_encoders(register: Callable[[Any], None]) -> None:
    """Register output encoders (museforge.Encoder), so a studio can add a format."""

"""The declaration of a training + export recipe, importable without torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """How ``museforge export NAME`` reproduces a shipped model.

    ``build`` is "module:function", imported only when the recipe runs, so that
    registering a recipe never imports torch. The function receives a
    ``museforge.export.RecipeContext`` and returns a ``museforge.export.TrainedModel``.
    """

    name: str  # model name, e.g. "image.digits"
    description: str
    build: str  # "package.module:function"
    models_dir: Path  # where the shipped versions live: .../models/digits

    def load_build(self) -> Callable[..., Any]:
        module_name, _, attr = self.build.partition(":")
        if not attr:
            raise ValueError(f"recipe {self.name}: build must be 'module:function'")
        return getattr(importlib.import_module(module_name), attr)

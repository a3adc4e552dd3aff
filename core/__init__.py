"""museforge: a gRPC server for digital-art generation with pluggable ONNX generators."""

from __future__ import annotations

__version__ = "0.1.0"

from .engine.codecs.encoders import Encoder
from .engine.effect import Effect, Picture
from .engine.generator import (
    Cancelled,
    Chunk,
    GenerationContext,
    Generator,
    Media,
    ModelSource,
    Progress,
)
from .engine.hookspecs import hookimpl
from .engine.recipe import Recipe

__all__ = [
    "Cancelled",
    "Chunk",
    "Effect",
    "Encoder",
    "GenerationContext",
    "Generator",
    "Media",
    "ModelSource",
    "Picture",
    "Progress",
    "Recipe",
    "__version__",
    "hookimpl",
]

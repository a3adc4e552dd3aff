"""museforge: a gRPC server for digital-art generation with pluggable ONNX generators.

The public plugin API is this module and ``museforge.testing`` (pytest fixtures for a
plugin's tests); recipes and training code also use ``museforge.export``. Everything a
plugin needs is importable from here: the contract (``Generator``, ``Effect``, ``Recipe``,
``Encoder``, ``hookimpl`` and the typed ``register`` callbacks), seeded latents, tiling,
colour conversion, provenance and the image encoders. Every other module
(``museforge.engine.*``, ``museforge.runtime.*``, ``museforge.server.*``, ...) is internal
and may change without notice.

``import museforge`` stays light: it imports neither onnxruntime, grpc nor torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .engine.codecs import timecode
from .engine.codecs.encoders import (
    PROVENANCE_KEY,
    Encoder,
    encode_png,
    provenance_from_text,
    provenance_json,
    quietly,
    software_tag,
    to_pixels,
)
from .engine.codecs.image_formats import (
    IMAGE_ENCODERS,
    encode_exr,
    encode_jpeg,
    encode_png16,
    encode_webp,
)
from .engine.codecs.png_writer import write_png
from .engine.colour import display_data, linear_to_srgb, srgb_to_linear
from .engine.deferred_imports import defer_import
from .engine.effect import (
    AUDIO_INPUT_FORMATS,
    IMAGE_INPUT_FORMATS,
    VIDEO_INPUT_FORMATS,
    Clip,
    Effect,
    Picture,
    Sound,
)
from .engine.generator import (
    Cancelled,
    Chunk,
    GenerationContext,
    Generator,
    LimitExceeded,
    Media,
    ModelSource,
    OutputEstimate,
    Progress,
    request_count,
)
from .engine.hookspecs import (
    RegisterEffect,
    RegisterEncoder,
    RegisterGenerator,
    RegisterRecipe,
    hookimpl,
)
from .engine.latent import Draw, Variations, item_choices, latents
from .engine.random_choice import OrRandom
from .engine.recipe import Recipe
from .engine.tiling import RunTiles, Tiling, mirror_index, run_tiled
from .engine.video_edit import EditShot, render_edit

__all__ = [
    "AUDIO_INPUT_FORMATS",
    "IMAGE_ENCODERS",
    "IMAGE_INPUT_FORMATS",
    "PROVENANCE_KEY",
    "VIDEO_INPUT_FORMATS",
    "Cancelled",
    "Chunk",
    "Clip",
    "Draw",
    "EditShot",
    "Effect",
    "Encoder",
    "GenerationContext",
    "Generator",
    "LimitExceeded",
    "Media",
    "ModelSource",
    "OrRandom",
    "OutputEstimate",
    "Picture",
    "Progress",
    "Recipe",
    "RegisterEffect",
    "RegisterEncoder",
    "RegisterGenerator",
    "RegisterRecipe",
    "RunTiles",
    "Sound",
    "Tiling",
    "Variations",
    "__version__",
    "defer_import",
    "display_data",
    "encode_exr",
    "encode_jpeg",
    "encode_png",
    "encode_png16",
    "encode_webp",
    "hookimpl",
    "item_choices",
    "latents",
    "linear_to_srgb",
    "mirror_index",
    "provenance_from_text",
    "provenance_json",
    "quietly",
    "render_edit",
    "request_count",
    "run_tiled",
    "software_tag",
    "srgb_to_linear",
    "timecode",
    "to_pixels",
    "write_png",
]

"""What a generator is: the declaration a plugin registers and the objects it yields."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ValidationInfo

from ..runtime.model_source import ModelSource

MODALITIES = ("image", "audio", "mesh", "video")
MAX_PART = 64  # characters in a media part's name
MAX_UINT32 = 2**32 - 1  # the largest count or number of inputs a listing's message can carry


class LimitExceeded(ValueError):
    """Raised by a parameter model's validator when fields together ask for too much.

    The first of ``fields`` (request paths such as ``parameters.bars`` or ``count``) is the
    one reported; the message should name them all. The engine reports it as
    INVALID_ARGUMENT before anything runs.
    """

    def __init__(self, message: str, fields: Sequence[str]) -> None:
        super().__init__(message)
        self.message = message
        self.fields = tuple(fields)


def request_count(info: ValidationInfo) -> int:
    """The request's ``count``, for a parameter model's cross-field bounds (1 outside a request)."""
    context = info.context if isinstance(info.context, Mapping) else {}
    count = context.get("count", 1)
    return count if isinstance(count, int) and count >= 1 else 1


@dataclass(frozen=True)
class OutputEstimate:
    """How many bytes of raw media a request makes (float32 pixels, samples or mesh grids over
    all of ``count``) and the fields that set it, first the one to report."""

    bytes: int
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Progress:
    """A progress event; ``total`` 0 means unknown."""

    completed: int
    total: int
    stage: str = ""
    message: str = ""


@dataclass(frozen=True)
class SourceHeader:
    """What an input file said about itself beyond its pixels, for a result written in the same
    format to keep (an OpenEXR frame's timecode, chromaticities, compression, half floats).

    Filled by the decoder; the engine hands it to the encoder with each media an effect made from
    its one input (see :class:`Media`), and the encoder keeps what still holds for the result.
    """

    format: str  # the input's format: the encoder whose name it is may use it ("exr")
    attributes: Mapping[str, Any]  # as the format's library names and reads them ("timeCode")
    width: int  # the size of the pixels it described, to tell whether the result's differs
    height: int
    half: bool = False  # every channel read was 16-bit float


@dataclass(frozen=True)
class Media:
    """Raw media a generator produced, before an encoder turns it into a file.

    For images ``data`` is HxW, HxWx3 or HxWx4: uint8, uint16 or float32 in [0, 1].
    ``colorspace`` "linear" marks float32 scene-linear light (values may exceed 1, as an
    OpenEXR frame's do): EXR keeps it as it is, the display formats encode it to sRGB.
    Alpha, when present, is the last channel and never colour-converted; colour is straight
    (not multiplied by alpha): EXR output multiplies it, as the format expects.
    """

    kind: str  # "image", "audio", "mesh"
    data: Any
    index: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    colorspace: str = "srgb"  # "srgb" (display-referred) or "linear"
    # A named part of artifact ``index`` sent beside it (an audio stem: "melody", "bass"); it gets
    # its own file name (<prefix>-0000-melody.wav) and a "part" entry in its provenance.
    part: str = ""
    # The header of the input it was made from, for the encoder (set by the engine when an effect
    # over one input writes that input's format; a plugin need not set it).
    source: SourceHeader | None = None

    def __post_init__(self) -> None:
        # The part ends up in a file name a client writes: no path, and short enough for any disk.
        if not isinstance(self.part, str) or (self.part and not (
                self.part.replace("_", "").isalnum() and len(self.part) <= MAX_PART)):
            shown = repr(self.part)
            if len(shown) > 80:
                size = len(self.part) if isinstance(self.part, str) else "?"
                shown = f"{shown[:70]}... ({size} characters)"
            raise ValueError(f"a media part is a plain name of at most {MAX_PART} characters (letters, "
                             f"digits, _), got {shown}")


@dataclass(frozen=True)
class Chunk:
    """Part of an artifact sent ahead of it, so a caller can start using it early.

    StreamGenerate passes chunks on as they come (audio a game starts playing while later
    bars are still being composed); unary Generate drops them. ``offset`` is the byte
    offset of ``data`` in the stream of chunks of artifact ``index``; the artifact itself
    still follows, complete, when the generator yields its :class:`Media`.
    """

    index: int
    data: bytes
    media_type: str  # e.g. "audio/pcm;rate=48000;channels=2;format=s16le"
    offset: int


class Cancelled(Exception):
    """Raised inside a generator when the caller went away; the core stops quietly."""


class GenerationContext(Protocol):
    """What a running generator may ask of the server."""

    def infer(self, model: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one of the generator's models (batched by the runtime where it can)."""
        ...

    @property
    def format(self) -> str:
        """The output format requested (e.g. "png", "mid"): work that format does not need is skipped."""
        ...

    @property
    def cancelled(self) -> bool:
        """True once the caller cancelled or its deadline passed."""
        ...

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the request is no longer wanted."""
        ...


GenerateFn = Callable[[GenerationContext, Any, int, int], Iterator["Progress | Media | Chunk"]]


@dataclass(frozen=True)
class Generator:
    """A generator declaration, registered through ``register_generators``.

    ``generate(ctx, params, seed, count)`` yields :class:`Progress` and :class:`Media`
    (and optionally :class:`Chunk` ahead of a Media);
    ``params`` is an instance of ``parameters`` (a pydantic model whose JSON Schema
    clients build their UI from). It runs in a worker thread, never on the event loop.
    """

    name: str
    modality: str
    parameters: type[BaseModel]
    generate: GenerateFn
    formats: tuple[str, ...]
    models: tuple[ModelSource, ...] = ()
    description: str = ""
    max_count: int | None = None  # None: the server's configured maximum
    # Cross-field rules a schema cannot state: (params, count) -> [(field, problem)], reported
    # as INVALID_ARGUMENT before anything runs. Size bounds belong in the parameter model
    # (a model validator raising LimitExceeded, with request_count), where the schema shows them.
    check: Callable[[Any, int], list[tuple[str, str]]] | None = None
    # (params, count) -> the output's size, checked against the server's max_output_bytes.
    estimate: Callable[[Any, int], OutputEstimate] | None = None
    # Formats written without rendering the media the estimate counts (music's MIDI: notes only).
    unrendered_formats: tuple[str, ...] = ()
    # Longest one call may run, in seconds (None: the server's generator_timeout_seconds).
    timeout: float | None = None
    # params -> the shape of one latent it draws with ``latents`` (parameters subclass Variations).
    # Declaring it makes the generator steerable: ``preference`` compares latents of one shape.
    latent_shape: Callable[[Any], tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        check_declaration("generator", "image.faces", self.name, self.modality, self.formats, self.timeout,
                          self.description)
        if self.max_count is not None:
            check_whole("generator", self.name, "max_count", self.max_count,
                        " (None: the server's max_count)")
        check_names("generator", self.name, "unrendered_formats", self.unrendered_formats)
        check_callables("generator", self.name, check=self.check,
                        estimate=self.estimate, latent_shape=self.latent_shape)
        check_models("generator", self.name, self.models)


def check_declaration(kind: str, example: str, name: str, modality: str, formats: tuple[str, ...],
                      timeout: float | None, description: str) -> None:
    """What a generator's and an effect's declaration both must be (ValueError naming the fault):
    whatever reaches a listing's message or a request's comparisons, so that one plugin's slip
    fails that plugin at start, not every listing or every call."""
    if not isinstance(name, str) or "." not in name or not all(map(_plain_part, name.split("."))):
        # A name goes into file names (<name>-<seed>-0000.png) and the gateway's paths
        # (/v1/generators/{generator}:generate).
        raise ValueError(f"{kind} name {name!r} must be dotted words with no '/', ':', '\\' or "
                         f"spaces, e.g. {example!r}")
    if modality not in MODALITIES:
        raise ValueError(f"{kind} {name}: modality must be one of {MODALITIES}")
    if not isinstance(description, str):
        raise ValueError(f"{kind} {name}: description must be text, got {type(description).__name__} "
                         f"{description!r}")
    check_names(kind, name, "formats", formats)
    if not formats:
        raise ValueError(f"{kind} {name}: declare at least one output format")
    if timeout is not None and not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
                                    and 0 < timeout < math.inf):
        # Every call would otherwise fail DEADLINE_EXCEEDED ("ran past its -1 s limit").
        raise ValueError(f"{kind} {name}: timeout must be a number of seconds above 0, got {timeout!r}")


def check_whole(kind: str, name: str, field: str, value: object, unset: str = "") -> None:
    """A count the listings send as uint32 and requests compare with: 1 to 2**32-1, no bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 < int(value) <= MAX_UINT32:
        raise ValueError(f"{kind} {name}: {field} must be a whole number from 1 to {MAX_UINT32}{unset}, "
                         f"got {value!r}")


def check_names(kind: str, name: str, field: str, values: object) -> None:
    """A tuple of format names (a bare string would be read letter by letter)."""
    if isinstance(values, str) or not isinstance(values, (tuple, list)) or not all(
            isinstance(value, str) and value for value in values):
        raise ValueError(f"{kind} {name}: {field} must be a tuple of names, e.g. ('png',), got {values!r}")


def check_models(kind: str, name: str, models: object) -> None:
    """A tuple of ModelSource: a bare name ("studio.gain") would fail later, far from its cause."""
    if isinstance(models, (str, bytes)) or not isinstance(models, (tuple, list)) or not all(
            isinstance(model, ModelSource) for model in models):
        raise ValueError(f"{kind} {name}: models must be a tuple of museforge.ModelSource(name, "
                         f"directory), got {models!r}")


def check_callables(kind: str, name: str, **functions: object) -> None:
    for declared, function in functions.items():
        if function is not None and not callable(function):
            raise ValueError(f"{kind} {name}: {declared} must be a function or None, got {function!r}")


def _plain_part(part: str) -> bool:
    return bool(part) and not any(c.isspace() or c in "/\\:" for c in part)

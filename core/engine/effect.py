"""What an effect is: a generator's shape plus inputs (media in, media out)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from pydantic import BaseModel

from .errors import FieldViolation, InvalidArgument
from .generator import (
    GenerationContext,
    Media,
    ModelSource,
    Progress,
    SourceHeader,
    check_callables,
    check_declaration,
    check_models,
    check_names,
    check_whole,
)

if TYPE_CHECKING:
    from .codecs.audio_decode import AudioInfo
    from .codecs.video import VideoInfo

# Formats every image effect can read (core decoders, see museforge.engine.codecs.decoders).
IMAGE_INPUT_FORMATS = ("png", "png16", "jpeg", "webp", "exr")
# Containers an effect may take whole as a :class:`Clip` (decoded by FFmpeg through PyAV).
VIDEO_INPUT_FORMATS = ("mp4", "mov", "mkv", "webm")
# Audio files an effect may take whole as a :class:`Sound` (e.g. a soundtrack).
AUDIO_INPUT_FORMATS = ("wav", "flac", "ogg", "mp3")
INPUT_FORMATS = IMAGE_INPUT_FORMATS + VIDEO_INPUT_FORMATS + AUDIO_INPUT_FORMATS


@dataclass(frozen=True)
class Picture:
    """One decoded input image, as an effect receives it.

    ``colour`` is HxWxC float32 (C = 1 grey or 3 RGB). Display-referred inputs (PNG,
    JPEG, WebP) hold sRGB-encoded values in [0, 1]; ``linear`` inputs (OpenEXR) hold
    scene-linear light, which may exceed 1. ``alpha`` (HxW float32 in [0, 1]) is kept
    apart so no network ever sees it; ``carry_alpha`` puts it back on the result. Colour is
    straight (not multiplied by alpha) whatever the file: an EXR's premultiplied colour is
    divided by its alpha when read (where alpha is 0 it is kept: light with no coverage).
    """

    colour: np.ndarray
    alpha: np.ndarray | None
    format: str  # the decoder that read it: "png", "png16", "jpeg", "webp", "exr"
    linear: bool = False
    name: str = ""  # the caller's name for the input (e.g. a frame's file name)
    source: SourceHeader | None = None  # the file's header, which an EXR result keeps

    @property
    def height(self) -> int:
        return int(self.colour.shape[0])

    @property
    def width(self) -> int:
        return int(self.colour.shape[1])

    @property
    def channels(self) -> int:
        return int(self.colour.shape[2])


@dataclass(frozen=True)
class Clip:
    """One input video, as an effect that takes video files receives it.

    Nothing is decoded up front: :meth:`frames` decodes one frame at a time (optionally
    scaled down by FFmpeg), so an effect's memory stays a few frames whatever the length.
    """

    info: VideoInfo
    format: str  # "mp4", "mov", "mkv" or "webm"
    name: str = ""
    field: str = "inputs[0]"  # the request field it came in, named when it turns out damaged

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def fps(self) -> Fraction:
        return self.info.fps

    @property
    def frame_count(self) -> int:
        """As the container states it (or its duration times its rate)."""
        return self.info.frames

    @property
    def timecode(self) -> str | None:
        """The source's starting timecode (e.g. "01:00:00:00"), when it carries one."""
        return self.info.timecode

    def frames(self, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        """Every frame, in order, as (height, width, 3) uint8 RGB, scaled to ``size``
        (width, height) by area averaging when given. A file found damaged part way (it passed
        the first look) is the caller's input: ``InvalidArgument`` naming its field."""
        from .codecs.video import VideoError, read_frames

        try:
            yield from read_frames(self.info, size)
        except VideoError as error:
            raise InvalidArgument("the video could not be read", [FieldViolation(self.field, str(error))]) \
                from None


    def audio(self, rate: int = 48000, channels: int = 1, start: float = 0.0,
              seconds: float | None = None) -> np.ndarray | None:
        """The sound from ``start`` (seconds after the first frame) for ``seconds`` (None: to the end)
        as float32 samples (frames, channels) at ``rate``; None when the video has no sound."""
        from .codecs.video_sound import clip_samples

        if self.info.audio is None:
            return None
        return clip_samples(self.info, rate, channels, start, seconds)


@dataclass(frozen=True)
class Sound:
    """One input audio file (a soundtrack), as an effect that takes audio files receives it.

    Decoded on demand by :meth:`samples`; ``tags`` are the file's own (a museforge piece carries
    its provenance, tempo included, as ``comment``)."""

    info: AudioInfo
    format: str  # "wav", "flac", "ogg" or "mp3"
    name: str = ""

    @property
    def seconds(self) -> float:
        return self.info.seconds

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.info.tags)

    def samples(self, rate: int = 48000, channels: int = 1, start: float = 0.0,
                seconds: float | None = None) -> np.ndarray:
        """float32 samples (frames, channels) at ``rate`` from ``start`` for ``seconds``."""
        from .codecs.audio_decode import decode_samples

        return decode_samples(self.info.open, rate, channels, start, seconds)


DecodedInput = Union[Picture, Clip, Sound]  # noqa: UP007 - a runtime alias, kept readable on 3.10
ApplyFn = Callable[[GenerationContext, Any, Sequence[Any], int], Iterator["Progress | Media"]]


@dataclass(frozen=True)
class Effect:
    """An effect declaration, registered through ``register_effects``.

    ``apply(ctx, params, inputs, seed)`` yields :class:`Progress` and :class:`Media`,
    like a generator's ``generate``; ``inputs`` are the decoded inputs, between
    ``min_inputs`` and ``max_inputs`` of them: a :class:`Picture` each, or a :class:`Clip`
    for a video when ``input_formats`` names video containers, or a :class:`Sound` for an audio
    file when it names audio formats. Media from an effect may carry
    ``colorspace="linear"`` (see :class:`Media`) so film frames stay scene-linear.
    """

    name: str
    modality: str
    parameters: type[BaseModel]
    apply: ApplyFn
    formats: tuple[str, ...]  # output formats; the request's input format is the default
    input_formats: tuple[str, ...] = IMAGE_INPUT_FORMATS
    models: tuple[ModelSource, ...] = ()
    description: str = ""
    min_inputs: int = 1
    max_inputs: int = 1
    # Cross-field checks a schema cannot state: (params, inputs) -> [(field, problem)].
    check: Callable[[Any, Sequence[Any]], list[tuple[str, str]]] | None = None
    # (params, inputs) -> (width, height) of the images it returns, when not the first input's
    # (an upscale): a format too small for them is then refused before the work, not after.
    output_size: Callable[[Any, Sequence[Any]], tuple[int, int]] | None = None
    # The largest image input it takes, width x height, when below the server's max_input_pixels:
    # checked from the file's header, so a frame far too large is refused before it is decoded.
    max_input_pixels: int | None = None
    # Longest one call may run, in seconds (None: the server's generator_timeout_seconds).
    timeout: float | None = None

    def __post_init__(self) -> None:
        check_declaration("effect", "effect.upscale", self.name, self.modality, self.formats, self.timeout,
                          self.description)
        check_whole("effect", self.name, "min_inputs", self.min_inputs)
        check_whole("effect", self.name, "max_inputs", self.max_inputs)
        if self.max_input_pixels is not None:
            check_whole("effect", self.name, "max_input_pixels", self.max_input_pixels)
        if not self.min_inputs <= self.max_inputs:
            raise ValueError(f"effect {self.name}: need 1 <= min_inputs <= max_inputs")
        check_callables("effect", self.name, check=self.check, output_size=self.output_size)
        check_models("effect", self.name, self.models)
        # The decoders are the core's own: a format outside them would make every input of it
        # refused ("jpeg input is not accepted here; use one of ['png', 'jpg']") or the effect uncallable.
        check_names("effect", self.name, "input_formats", self.input_formats)
        known = ", ".join(INPUT_FORMATS)
        if not self.input_formats:
            raise ValueError(f"effect {self.name}: declare at least one input format (known: {known})")
        for fmt in self.input_formats:
            if fmt not in INPUT_FORMATS:
                raise ValueError(f"effect {self.name} declares input format {fmt!r} that no decoder reads "
                                 f"(known: {known})")

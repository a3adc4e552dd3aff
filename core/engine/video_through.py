"""A frame-wise effect over a whole video sent in one call.

An effect that takes one image (effect.denoise, effect.upscale) also takes one video file
(MP4, MOV, MKV or WebM) in ApplyEffect: each frame goes through it in turn with the call's
seed, and one video comes back (``format`` mp4: H.264; mov: ProRes 422 HQ) at the source's
rate, colour description and timecode, with its sound. A studio page or a script drops a
clip on an effect and gets the clip back, with a progress event per frame.

Each frame reaches the effect exactly as an 8-bit PNG of it would (the decoder's arithmetic),
and its result is encoded as its PNG would hold it, so the pixels equal those of
``museforge apply`` and of a batch job over the same video. A video longer than one call may
run (``generator_timeout_seconds``) belongs in a batch job, which also survives restarts.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .codecs.encoders import Encoder
from .codecs.video import VideoWriter, read_range
from .codecs.video_frames import pixels_of
from .effect import IMAGE_INPUT_FORMATS, VIDEO_INPUT_FORMATS, Clip, Effect, Picture
from .errors import FieldViolation, InvalidArgument
from .generator import GenerationContext, Media, Progress
from .pipeline import stop_run

# What comes back, by ``format``; the source's container decides when none is asked for.
VIDEO_OUTPUTS = {"mp4": "video/mp4", "mov": "video/quicktime"}
FRAME_FORMAT = "png"  # the format each frame is asked of the effect in, as the CLI and jobs ask


@dataclasses.dataclass(frozen=True)
class OverVideo(Effect):
    """A frame-wise effect run over a video (made by :func:`over_video` for one call)."""


def takes_frames(effect: Effect) -> bool:
    """It takes one image and reads no video itself: it can run over a video frame by frame."""
    return (effect.min_inputs == 1 and any(f in IMAGE_INPUT_FORMATS for f in effect.input_formats)
            and not any(f in VIDEO_INPUT_FORMATS for f in effect.input_formats))


def over_video(effect: Effect) -> Effect:
    """``effect`` as one that takes a video and makes a video of its results, frame by frame."""
    def apply(ctx: GenerationContext, params: Any, inputs: Sequence[Any], seed: int) -> Iterator[Any]:
        return _through(effect, ctx, params, inputs[0], seed)

    def check(params: Any, inputs: Sequence[Any]) -> list[tuple[str, str]]:
        assert effect.check is not None
        return effect.check(params, [first_picture(inputs[0])])

    declared = {f.name: getattr(effect, f.name) for f in dataclasses.fields(Effect)}
    return OverVideo(**{**declared, "apply": apply, "modality": "video", "formats": tuple(VIDEO_OUTPUTS),
                        "input_formats": VIDEO_INPUT_FORMATS, "max_inputs": 1,
                        "check": None if effect.check is None else check})


def video_encoders() -> dict[str, Encoder]:
    """The outputs of an effect run over a video: the file, as made (provenance is in the reply)."""
    return {name: Encoder(name=name, modality="video", media_type=media_type, extension=name,
                          encode=lambda media, _provenance: bytes(media.data))
            for name, media_type in VIDEO_OUTPUTS.items()}


def picture_of(rgb: np.ndarray, name: str) -> Picture:
    """A frame as the image decoder makes an 8-bit RGB PNG of it."""
    return Picture(np.asarray(rgb, np.float32) / np.float32(255.0), None, format=FRAME_FORMAT, name=name)


def first_picture(clip: Clip) -> Picture:
    """The video's first frame (for the effect's own checks of its inputs)."""
    frames = read_range(clip.info, 0, 0)
    try:
        return picture_of(next(frames), frame_name(clip, 0))
    finally:
        frames.close()


def frame_name(clip: Clip, number: int) -> str:
    return f"{Path(clip.name).stem}-{number:06d}.{FRAME_FORMAT}"


def one_result(run: Iterable[Any]) -> list[Media]:
    """A frame's results, stopped at the second (one is wanted): a run that never stops yielding
    is not read on into memory."""
    made: list[Media] = []
    for event in run:
        if isinstance(event, Media) and not event.part:
            made.append(event)
            if len(made) > 1:
                break
    stop_run("a frame's effect", run)
    return made


def _through(effect: Effect, ctx: GenerationContext, params: Any, clip: Clip, seed: int) -> Iterator[Any]:
    info = clip.info
    # Each frame is asked for as the CLI and jobs ask for it (an effect may skip work by format).
    frame_ctx = dataclasses.replace(ctx, format=FRAME_FORMAT) if dataclasses.is_dataclass(ctx) else ctx
    with tempfile.TemporaryDirectory(prefix="museforge-video-") as folder:
        target = Path(folder) / f"video.{ctx.format}"
        with VideoWriter(target, info) as writer:
            for number, rgb in enumerate(clip.frames()):  # damaged part way: refused naming it
                name = frame_name(clip, number)
                made = one_result(effect.apply(frame_ctx, params, [picture_of(rgb, name)], seed))
                ctx.check_cancelled()
                if len(made) != 1 or made[0].kind != "image":
                    raise InvalidArgument(f"{effect.name} over a video", [FieldViolation(
                        "parameters", f"{effect.name} made {len(made)} results of frame {number}: over a "
                        "video, an effect must make one image of each frame")])
                writer.write(pixels_of(made[0]))
                yield Progress(number + 1, max(info.frames, number + 1), stage="frames",
                               message=f"frame {number + 1} of {info.frames}")
        data = target.read_bytes()
    yield Media(kind="video", data=data, index=0,
                metadata={"frames": str(writer.written), "fps": str(writer.fps)})

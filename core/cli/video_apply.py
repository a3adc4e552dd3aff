"""``museforge apply <effect> in.mp4 -o out.mp4``: a frame-wise effect over a video file.

The frames are decoded here one at a time, each sent through the effect (in this process
with --local, else to the server, as a PNG, as any image would be), and the results encoded
as they come back: memory stays a few frames whatever the length. Every frame gets the same
seed, so an effect with randomness does not flicker. The frame rate, colour description,
timecode and audio of the source are carried through (museforge.engine.codecs.video).

An effect that takes two frames and makes the frames between them (effect.interpolate)
changes the frame rate instead: every consecutive pair goes through it, its results are
written between the two, and the rate is multiplied by the results per pair plus one
(24 fps with ``frames=1`` becomes 48). The last frame is held for the new frames of its
interval, so the video lasts as long as before and its sound stays in sync.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..engine.codecs.video_frames import pixels_of, png_of, rgb_of
from ..engine.errors import RequestError
from .media_files import check_target_file, input_refusal, output_folder
from .options import connect, settings_from
from .output import EXIT_OK, EXIT_USAGE, Bar, fail

T = TypeVar("T")
FrameEffect = Callable[[str, np.ndarray], np.ndarray]  # (frame name, RGB) -> the effect's RGB
# (name, RGB, the next frame's RGB or None) -> the effect's results (the in-betweens of a pair).
PairEffect = Callable[[str, np.ndarray, "np.ndarray | None"], list[np.ndarray]]


@dataclass(frozen=True)
class EffectShape:
    """What the CLI must know of an effect before sending it a video."""

    input_formats: tuple[str, ...]
    min_inputs: int
    max_inputs: int

    @property
    def whole_video(self) -> bool:
        """It reads a video file whole (video.shots), not frame by frame."""
        from ..engine.effect import VIDEO_INPUT_FORMATS

        return any(f in VIDEO_INPUT_FORMATS for f in self.input_formats)

    @property
    def in_between(self) -> bool:
        """It takes two frames and makes those between them (effect.interpolate)."""
        return self.min_inputs == self.max_inputs == 2


def effect_shape(args: argparse.Namespace) -> EffectShape | None:
    """The effect's inputs as the catalogue (--local) or the server lists them; None if unknown."""
    if args.local:
        from ..engine.catalogue import Engine

        effects = Engine(settings_from(args)).host.load().effects  # the catalogue alone: no model loaded
        found = effects.get(args.effect)
        return None if found is None else EffectShape(found.input_formats, found.min_inputs, found.max_inputs)
    with connect(args) as client:
        listed = next((e for e in client.effects() if e.name == args.effect), None)
    return None if listed is None else EffectShape(tuple(listed.input_formats), listed.min_inputs,
                                                   listed.max_inputs)


def is_video(path: Path) -> bool:
    from ..engine.codecs.video import VIDEO_SUFFIXES

    return path.suffix.lower() in VIDEO_SUFFIXES


def frame_effect(args: argparse.Namespace, stack: ExitStack) -> FrameEffect:
    """The effect as a function of one frame, here (--local) or on the server."""
    pair = pair_effect(args, stack)
    return lambda name, rgb: single(pair(name, rgb, None))


def pair_effect(args: argparse.Namespace, stack: ExitStack) -> PairEffect:
    """The effect as a function of a frame and, for an in-between effect, the next one; its results.

    In this process (--local) the results come back as the effect made them, unencoded;
    from a server, as PNG files."""
    parameters, seed = dict(args.param), 0 if args.seed is None else args.seed

    def named(name: str, rgb: np.ndarray, after: np.ndarray | None) -> list[tuple[str, bytes]]:
        return [(name, png_of(rgb))] + ([] if after is None else [("", png_of(after))])

    if args.local:
        from ..engine.catalogue import EffectInput, Engine

        engine = Engine(settings_from(args)).start()
        stack.callback(engine.close)

        def local(name: str, rgb: np.ndarray, after: np.ndarray | None) -> list[np.ndarray]:
            inputs = [EffectInput(data, label) for label, data in named(name, rgb, after)]
            return [pixels_of(m) for m in engine.apply_media(args.effect, parameters, inputs, seed=seed)]
        return local
    client = stack.enter_context(connect(args))

    def remote(name: str, rgb: np.ndarray, after: np.ndarray | None) -> list[np.ndarray]:
        inputs = named(name, rgb, after)
        reply = patiently(lambda: client.apply_effect(args.effect, inputs, parameters, seed=seed, fmt="png"))
        return [rgb_of(a.data) for a in reply.artifacts]
    return remote


PATIENCE_SECONDS = 120.0  # waiting on a busy server, per frame, before the video fails


def patiently(call: Callable[[], T], pause: Callable[[float], None] = time.sleep,
              patience: float = PATIENCE_SECONDS) -> T:
    """``call()``, called again while the server says it is busy (RESOURCE_EXHAUSTED: a per-key
    rate or concurrency limit, a full model queue), after the delay it asks for or a doubling
    one. A video is thousands of calls; one refused by a busy server must not lose the rest."""
    from ..client_errors import ResourceExhausted

    waited, backoff = 0.0, 0.25
    while True:
        try:
            return call()
        except ResourceExhausted as exc:
            delay = exc.retry_after if exc.retry_after is not None else backoff
            if waited + delay > patience:
                raise
            pause(delay)
            waited, backoff = waited + delay, min(backoff * 2.0, 8.0)


def single(results: list[np.ndarray]) -> np.ndarray:
    if len(results) != 1:
        raise RequestError(f"the effect made {len(results)} images of one frame; a video takes effects that "
                           "make one")
    return results[0]


def output_refusal(args: argparse.Namespace) -> str:
    """Why the inputs and -o cannot make a video through a frame-wise effect ('' if they can), said
    before a frame is decoded. A folder that cannot be made or written is said when it is made."""
    from ..engine.codecs.video import OUTPUT_SUFFIXES

    inputs, output = args.inputs, args.output
    if len(inputs) != 1:
        pictures = [path for path in inputs if not is_video(path)]
        instead = "; the pictures in a run of their own" if pictures else ""
        return (f"-o {output}: a video is applied alone, and {len(inputs)} inputs were given "
                f"({', '.join(map(str, inputs))}); apply each video in a run of its own, -o naming its "
                f"output video{instead}")
    source, suffix = inputs[0], output.suffix.lower()
    stdout, folder = str(output) == "-", output.is_dir() or not suffix
    if stdout or folder or suffix not in OUTPUT_SUFFIXES:
        short = args.effect.rpartition(".")[2]
        kinds = " or ".join(f"{s} ({what})" for s, what in OUTPUT_SUFFIXES.items())
        example = (Path(f"{source.stem}-{short}.mp4") if stdout else
                   output / f"{source.stem}-{short}.mp4" if folder else output.with_suffix(".mp4"))
        said = ("writes to stdout" if stdout else "names a folder" if folder
                else f"is not a video museforge writes ({suffix})")
        return f"-o {output} {said}: a video is written to one file, {kinds}; e.g. -o {example}"
    check_target_file(output, "give the name of a video file to write")
    return input_refusal(output, inputs)


def apply_to_video(args: argparse.Namespace, shape: EffectShape | None) -> int:
    from ..engine.codecs.video import VideoError, VideoWriter, probe, read_frames

    refusal = output_refusal(args)
    if refusal:
        return fail(refusal, EXIT_USAGE)
    source, output = args.inputs[0], args.output
    if not source.is_file():
        return fail(f"cannot read {source}: no such file", EXIT_USAGE)
    if source.stat().st_size == 0:  # said plainly, not as FFmpeg's "invalid data"
        return fail(f"{source.name}: the file is empty (0 bytes), not a video")
    bar = Bar()
    # The folder is made and checked before the source is opened, and taken away if nothing is written.
    with output_folder(output.parent, output) as written, ExitStack() as stack:
        try:
            info = probe(source)
            if shape is not None and shape.in_between:
                writer = in_between(info, output, pair_effect(args, stack), bar)
            else:
                effect = frame_effect(args, stack)
                with VideoWriter(output, info) as writer:
                    for number, rgb in enumerate(read_frames(info)):
                        writer.write(effect(f"{source.stem}-{number:06d}.png", rgb))
                        bar.update(number + 1, info.frames, "frames")
        except VideoError as exc:
            return fail(str(exc))
        finally:
            bar.close()
        written.append(output)
    print(output)
    sound = " with audio" if info.audio else ""
    print(f"{writer.written} frames at {float(writer.fps):g} fps written{sound}", file=sys.stderr)
    return EXIT_OK


def in_between(info: Any, output: Path, effect: PairEffect, bar: Bar) -> Any:
    """The video with the effect's frames between every two of the source's, at the rate that
    keeps its duration (see the module's docstring); returns the finished writer."""
    from ..engine.codecs.video import VideoWriter, read_frames

    frames: Iterator[Any] = read_frames(info)
    previous = next(frames)
    writer: Any = None
    made_per_pair = 0
    with ExitStack() as stack:  # the writer, once the first pair says at which rate: finished or removed
        for number, rgb in enumerate(frames, 1):
            made = effect(f"{info.path.stem}-{number - 1:06d}.png", previous, rgb)
            if writer is None:
                if not made:
                    raise RequestError("the effect made no frame between two frames")
                made_per_pair = len(made)
                writer = stack.enter_context(VideoWriter(output, info, rate=info.fps * (made_per_pair + 1)))
                writer.write(previous)
            elif len(made) != made_per_pair:
                raise RequestError(f"the effect made {len(made)} frames between frames {number - 1} and "
                                   f"{number}, {made_per_pair} before: a video needs as many each time")
            for between in made:
                writer.write(between)
            writer.write(rgb)
            previous = rgb
            bar.update(number + 1, info.frames, "frames")
        if writer is None:
            raise RequestError(f"{info.path.name}: one frame has no frame after it to interpolate towards")
        for _ in range(made_per_pair):  # the last frame's interval, held: the sound stays in sync
            writer.write(previous)
    return writer

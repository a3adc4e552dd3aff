"""``museforge apply <effect> in.mp4 -o out.mp4``: a frame-wise effect over a video file.

The frames are decoded here one at a time, each sent through the effect (in this process
with --local, else to the server, as a PNG, as any image would be), and the results encoded
as they come back: memory stays a few frames whatever the length. Every frame gets the same
seed, so an effect with randomness does not flicker. The frame rate, colour description,
timecode and audio of the source are carried through (museforge.engine.codecs.video).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.codecs.png_writer import write_png
from ..engine.errors import RequestError
from .options import connect, settings_from
from .output import EXIT_OK, EXIT_USAGE, Bar, fail

FrameEffect = Callable[[str, bytes], bytes]  # (frame name, PNG) -> the effect's PNG


def is_video(path: Path) -> bool:
    from ..engine.codecs.video import VIDEO_SUFFIXES

    return path.suffix.lower() in VIDEO_SUFFIXES


def png_of(rgb: np.ndarray) -> bytes:
    return write_png(rgb, level=1)  # a frame in transit: speed over size


def rgb_of(png: bytes) -> np.ndarray:
    """An effect's frame (asked for as 8-bit PNG) as RGB; grey or alpha results brought to it."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.uint8)


def frame_effect(args: argparse.Namespace, stack: ExitStack) -> FrameEffect:
    """The effect as a function of one frame, here (--local) or on the server."""
    parameters, seed = dict(args.param), 0 if args.seed is None else args.seed
    if args.local:
        from ..engine.catalogue import EffectInput, Engine

        engine = Engine(settings_from(args)).start()
        stack.callback(engine.close)

        def local(name: str, png: bytes) -> bytes:
            return single(engine.apply_effect(args.effect, parameters, [EffectInput(png, name)], seed=seed,
                                              fmt="png"))
        return local
    client = stack.enter_context(connect(args))

    def remote(name: str, png: bytes) -> bytes:
        reply = client.apply_effect(args.effect, [(name, png)], parameters, seed=seed, fmt="png")
        return single(reply.artifacts)
    return remote


def single(artifacts: Iterable[Any]) -> bytes:
    found = list(artifacts)
    if len(found) != 1:
        raise RequestError(f"the effect made {len(found)} images of one frame; a video takes effects that "
                           "make one")
    return bytes(found[0].data)


def apply_to_video(args: argparse.Namespace) -> int:
    from ..engine.codecs.video import OUTPUT_SUFFIXES, VideoError, VideoWriter, probe, read_frames

    if len(args.inputs) != 1:
        return fail("a video is applied alone: give one input video", EXIT_USAGE)
    source, output = args.inputs[0], args.output
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        kinds = ", ".join(f"{suffix} ({what})" for suffix, what in OUTPUT_SUFFIXES.items())
        return fail(f"name the output video with -o: {kinds}", EXIT_USAGE)
    if not source.is_file():
        return fail(f"cannot read {source}: no such file", EXIT_USAGE)
    try:
        info = probe(source)
    except VideoError as exc:
        return fail(str(exc))
    output.parent.mkdir(parents=True, exist_ok=True)
    bar = Bar()
    with ExitStack() as stack:
        effect = frame_effect(args, stack)
        try:
            with VideoWriter(output, info) as writer:
                for number, rgb in enumerate(read_frames(info)):
                    writer.write(rgb_of(effect(f"{source.stem}-{number:06d}.png", png_of(rgb))))
                    bar.update(number + 1, info.frames, "frames")
        except VideoError as exc:
            return fail(str(exc))
        finally:
            bar.close()
    print(output)
    print(f"{writer.written} frames at {float(info.fps):g} fps written{' with audio' if info.audio else ''}",
          file=sys.stderr)
    return EXIT_OK

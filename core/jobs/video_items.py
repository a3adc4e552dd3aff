"""Batch jobs over a video file: its frames in ranges, one item each, joined at the end.

A range is decoded from the key frame before it, each frame goes through the steps, and
the results are encoded to a part of its own (a hidden file beside the output, written
under a temporary name and renamed when complete and on disk), then the item is
committed. A crash loses only the ranges in flight, and a range redone is byte for byte
the part it would have been. The job's last item joins the parts, packets copied and not
re-encoded, with the source's sound, into the output (see
:mod:`museforge.engine.codecs.video_join`), then removes them. A cancelled or failed job
leaves no parts and no output behind.

Memory stays a few frames per range in flight, whatever the video's length.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.catalogue import EffectInput, Engine
from ..engine.codecs.video import VideoError, VideoInfo, VideoWriter, count_frames, probe, read_range
from ..engine.codecs.video_frames import pixels_of, png_of
from ..engine.codecs.video_join import join_parts
from ..engine.errors import RequestError
from .chain import (
    FrameLimits,
    ItemCancelled,
    ItemError,
    intermediate_format,
    item_outcome,
    retry_overloaded,
    run_chain,
)
from .paths import Sandbox
from .store import Item, ItemState

if TYPE_CHECKING:  # the plan's module imports this one's
    from .plan import Step

UNLIMITED_SECONDS = float("inf")  # a job may take hours of video: its items, not its length, are bounded


@dataclass(frozen=True)
class VideoJob:
    """A video job's shape, as stored with it (the range resolved at submission)."""

    video: str  # the input, as given
    output: str  # the joined video, as given
    first: int
    last: int  # inclusive
    per_item: int

    @classmethod
    def of(cls, spec: dict[str, Any]) -> VideoJob | None:
        """The video job a stored spec describes; None for a frame job."""
        given = spec.get("input", {})
        if not given.get("video"):
            return None
        return cls(str(given["video"]), str(spec["output_pattern"]), int(given.get("first_frame", 0)),
                   int(given["last_frame"]), int(given["frames_per_item"]))

    @property
    def frames(self) -> int:
        return self.last - self.first + 1

    def starts(self) -> range:
        return range(self.first, self.last + 1, self.per_item)

    def last_of(self, start: int) -> int:
        """The last frame of the range starting at ``start`` (the joining item: of them all)."""
        return min(start + self.per_item - 1, self.last)

    def part(self, start: int) -> str:
        """Where the range starting at ``start`` is encoded: hidden, beside the output."""
        output = PurePosixPath(self.output)
        return str(output.parent / f".{output.name}.parts" / f"{start:09d}{output.suffix.lower()}")


def range_item(
    engine: Engine,
    sandbox: Sandbox,
    job: VideoJob,
    steps: Sequence[Step],
    seed: int,
    start: int,
    halt: threading.Event,
    limits: FrameLimits,
) -> tuple[ItemState | None, str]:
    """One range: decode, run the steps on each frame, encode its part; DONE, FAILED or None (halted)."""
    last = job.last_of(start)

    def work() -> None:
        info = _source(sandbox, job.video)
        target = sandbox.output_path(job.part(start))
        target.parent.mkdir(parents=True, exist_ok=True)
        part_of = dataclasses.replace(info, audio=None, timecode=None)  # sound and timecode: at the join
        try:
            with VideoWriter(target, part_of) as writer:
                for number, rgb in enumerate(read_range(info, start, last), start):
                    writer.write(frame_through(engine, steps, rgb, f"{job.video}#{number}", seed, halt))
        except VideoError as exc:
            raise ItemError(str(exc)) from None

    frames = last - start + 1
    return item_outcome(work, f"{job.video} frames {start}-{last}", halt, limits.timeout_seconds * frames,
                        f"for {frames} frames")


def frame_through(
    engine: Engine, steps: Sequence[Step], rgb: np.ndarray, name: str, seed: int, cancel: threading.Event
) -> np.ndarray:
    """A video frame after every step, as the 8-bit RGB the encoder takes. Between steps it travels
    losslessly, as in a frame job; the last step's image is taken as made, not encoded."""
    data = png_of(rgb)
    if len(steps) > 1:
        between = intermediate_format(engine, steps[-2].effect, "png")
        data = run_chain(engine, steps[:-1], data, name, between, seed, cancel)
    last = steps[-1]
    try:
        media = retry_overloaded(
            lambda: engine.apply_media(last.effect, last.parameters, [EffectInput(data, name)], seed=seed,
                                       cancel=cancel),
            last.effect, cancel)
    except RequestError as exc:
        detail = "; ".join(f"{v.field}: {v.description}" for v in exc.violations) or exc.message
        raise ItemError(f"step {len(steps) - 1} ({last.effect}): {detail}") from exc
    if cancel.is_set() or media is None:
        raise ItemCancelled(name)
    if len(media) != 1 or media[0].kind != "image":
        raise ItemError(f"step {len(steps) - 1} ({last.effect}) gave {len(media)} results, "
                        "expected one image")
    return pixels_of(media[0])


def join_item(sandbox: Sandbox, job: VideoJob, ranges: Sequence[Item]) -> tuple[ItemState, str]:
    """The last item: join the parts into the output once every range is done, then remove them."""
    undone = [r for r in ranges if r.state != ItemState.DONE]
    if undone:
        discard_parts(sandbox, job)
        return ItemState.FAILED, (f"not joined: {len(undone)} of {len(ranges)} ranges were not done "
                                  f"(the first: frames {undone[0].frame}-{job.last_of(undone[0].frame)})")
    try:
        target = sandbox.output_path(job.output)
        parts = [sandbox.output_path(job.part(start)) for start in job.starts()]
        if not parts[0].parent.exists() and _joined_before(target, job):
            return ItemState.DONE, ""  # joined, and its parts removed, just before a crash
        join_parts(parts, target, _source(sandbox, job.video), job.first, job.frames)
    except (VideoError, ItemError, OSError) as exc:
        return ItemState.FAILED, str(exc)
    discard_parts(sandbox, job)
    return ItemState.DONE, ""


def discard_parts(sandbox: Sandbox, job: VideoJob) -> None:
    """Remove the parts (all of them, and any half-written): the job has joined them, or never will."""
    folder = sandbox.output_path(job.part(job.first)).parent
    shutil.rmtree(folder, ignore_errors=True)


def _joined_before(target: Path, job: VideoJob) -> bool:
    if not target.is_file():
        return False
    try:
        return count_frames(probe(target, UNLIMITED_SECONDS)) == job.frames
    except VideoError:
        return False


def _source(sandbox: Sandbox, name: str) -> VideoInfo:
    source = sandbox.input_path(name)
    if not source.is_file():
        raise ItemError(f"input {name} not found")
    try:
        return probe(source, UNLIMITED_SECONDS)
    except VideoError as exc:
        raise ItemError(str(exc)) from None

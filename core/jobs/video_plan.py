"""Check and plan a job over a video file, at submission.

The video is opened then (it must be a video this build decodes, at a constant frame
rate, inside the sandbox), its frames counted, the range resolved and cut into items of
``frames_per_item``, and one last item added that joins them. The resolved range and
frames per item are stored with the job, so a resume plans nothing again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.codecs.video import OUTPUT_SUFFIXES, VideoError, count_frames, probe
from ..engine.errors import FieldViolation
from ..v1 import jobs_pb2
from .paths import PathRefused, Sandbox, not_a_file
from .store import ItemPlan
from .video_items import UNLIMITED_SECONDS, VideoJob

DEFAULT_FRAMES_PER_ITEM = 48
MAX_FRAMES_PER_ITEM = 100_000


def plan_video(
    spec: jobs_pb2.JobSpec,
    sandbox: Sandbox,
    max_items: int,
    violations: list[FieldViolation],
    denied: list[FieldViolation],
) -> tuple[list[ItemPlan], dict[str, Any]]:
    """The items (ranges, then the join) and the input fields to store; nothing after recording
    what is wrong."""
    given = spec.input
    before = len(violations) + len(denied)
    if given.pattern or given.paths:
        violations.append(FieldViolation("job.input", "give a pattern, a list of paths or a video, not more"))
    if given.frames_per_item > MAX_FRAMES_PER_ITEM:
        violations.append(FieldViolation("job.input.frames_per_item",
                                         f"{given.frames_per_item:,}; at most {MAX_FRAMES_PER_ITEM:,}"))
    suffix = Path(spec.output_pattern).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        kinds = " or ".join(f"{s} ({what})" for s, what in OUTPUT_SUFFIXES.items())
        violations.append(FieldViolation("job.output_pattern", f"a video job writes one video: {kinds}"))
    if spec.format:
        violations.append(FieldViolation("job.format", "leave it empty for a video: the output_pattern's "
                                                       "suffix names the container"))
    source = _place(sandbox.input_path, given.video, "job.input.video", violations, denied)
    target = _place(sandbox.output_path, spec.output_pattern, "job.output_pattern", violations, denied)
    if source is None or target is None or len(violations) + len(denied) > before:
        return [], {}
    if target == source:
        violations.append(FieldViolation("job.output_pattern", "would overwrite the input video"))
        return [], {}
    missing = not_a_file(source)
    if missing is not None:
        violations.append(FieldViolation("job.input.video", f"{given.video} {missing}"))
        return [], {}
    try:
        frames = count_frames(probe(source, UNLIMITED_SECONDS))
    except VideoError as exc:
        violations.append(FieldViolation("job.input.video", str(exc)))
        return [], {}
    first = given.first_frame
    last = given.last_frame or frames - 1  # 0: to the end
    if not 0 <= first < frames:
        violations.append(FieldViolation("job.input.first_frame",
                                         f"{first}: the video's frames are 0 to {frames - 1}"))
    elif not first <= last < frames:
        violations.append(FieldViolation("job.input.last_frame",
                                         f"{last}: give {first} to {frames - 1} (the video's last frame)"))
    if len(violations) > before:
        return [], {}
    per_item = given.frames_per_item or DEFAULT_FRAMES_PER_ITEM
    job = VideoJob(given.video, spec.output_pattern, first, last, per_item)
    starts = job.starts()
    if len(starts) + 1 > max_items:
        violations.append(FieldViolation(
            "job.input.frames_per_item",
            f"{job.frames:,} frames in ranges of {job.per_item} make {len(starts) + 1:,} items, over the "
            f"limit of {max_items:,} per job: take more frames per item"))
        return [], {}
    items = [ItemPlan(start, job.video, job.part(start)) for start in starts]
    items.append(ItemPlan(first, job.video, job.output))  # the join
    return items, {"first_frame": str(first), "last_frame": str(last), "frames_per_item": job.per_item}


def _place(
    resolve: Callable[[str], Path],
    path: str,
    field: str,
    violations: list[FieldViolation],
    denied: list[FieldViolation],
) -> Path | None:
    try:
        return resolve(path)
    except PathRefused as exc:
        (denied if exc.permission else violations).append(FieldViolation(field, str(exc)))
        return None

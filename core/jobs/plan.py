"""Check a submitted job and plan its items, before anything is stored or run.

Everything a client can get wrong is reported at submission, each problem naming its
field (``job.steps[1].parameters.scale``, ``job.input.pattern``, ...): unknown effects,
bad parameters, effects that take more than one input, malformed or oversized frame
ranges, and paths outside the sandbox. Only what can change later (a frame file that
is missing or undecodable) is left to the item that reads it.

Every field has a size limit, checked first: a job is stored, listed and sent back with
every status, so one oversized field must not make those answers too big for anyone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from ..engine.catalogue import Engine
from ..engine.effect import VIDEO_INPUT_FORMATS, Effect
from ..engine.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from ..engine.validation import validate_parameters
from ..server.structs import struct_to_dict
from ..v1 import jobs_pb2
from .chain import formats_named
from .paths import FRAME_RUN_WORDS, PathRefused, Sandbox, frame_path, has_frame_run, not_a_file
from .store import ItemPlan
from .video_plan import plan_video

MAX_SEED = 2**64 - 1
# Size limits (docs/jobs.md lists them): characters for text, bytes for serialized values.
MAX_STEPS = 16
MAX_EFFECT_CHARS = 128
MAX_PARAMETERS_BYTES = 16 * 1024  # one step's parameters, serialized
MAX_PATH_CHARS = 1024  # input.pattern, each of input.paths, output_pattern
MAX_PATHS_BYTES = 4 * 1024 * 1024  # input.paths in all
MAX_FORMAT_CHARS = 16
MAX_KEY_CHARS = 128
MAX_DESCRIPTION_CHARS = 1024


@dataclass(frozen=True)
class Step:
    effect: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class JobPlan:
    """A checked job: its steps, seed, output format and one ItemPlan per frame."""

    spec: dict[str, Any]  # the JobSpec as JSON, with the seed filled in: what the store keeps
    steps: tuple[Step, ...]
    items: tuple[ItemPlan, ...]


def steps_of(spec: dict[str, Any]) -> tuple[Step, ...]:
    return tuple(Step(s["effect"], dict(s.get("parameters") or {})) for s in spec.get("steps", []))


def _suffix(path: str) -> str:
    return Path(path).suffix.lower().lstrip(".")


def _format_of_output(spec: jobs_pb2.JobSpec, engine: Engine, violations: list[FieldViolation]) -> None:
    """The output pattern's extension against the format written: sh.####.exr with no format once
    got PNG bytes in files named .exr. With no format, outputs whose extension is not the inputs'
    take the format it names (set on ``spec``); outputs ending as the inputs do are left to each
    frame, as its own format when that has the extension; a format with another extension is
    refused, as is an extension the last step does not write."""
    last = spec.steps[len(spec.steps) - 1].effect
    effect, suffix = engine.effects.get(last), _suffix(spec.output_pattern)
    if effect is None or not suffix:
        return
    extension = {name: engine.encoders[name].extension for name in effect.formats if name in engine.encoders}
    if spec.format:
        if spec.format in extension and extension[spec.format] != suffix:
            violations.append(FieldViolation("job.output_pattern", f"ends .{suffix}, but {spec.format} files "
                                             f"are .{extension[spec.format]}"))
        return
    inputs = [spec.input.pattern] if spec.input.pattern else list(spec.input.paths)
    named = formats_named(engine, effect, suffix)
    if named and inputs and all(_suffix(path) == suffix for path in inputs):
        return  # each frame decides when it is read (chain.final_format_of): a 16-bit PNG stays 16-bit
    if named:
        spec.format = named[0]
    else:
        known = ", ".join(f".{ext}" for ext in dict.fromkeys(extension.values()))
        violations.append(FieldViolation("job.output_pattern", f"ends .{suffix}, which {last} does not "
                                         f"write; it writes {known}"))


def plan_job(spec: jobs_pb2.JobSpec, engine: Engine, sandbox: Sandbox, max_items: int) -> JobPlan:
    """The job's plan, or InvalidArgument / PermissionDenied naming every bad field."""
    violations = check_sizes(spec, max_items)
    if violations:  # nothing else is looked at: an oversized name or path is not even echoed
        raise InvalidArgument("invalid job: a field is over its size limit", violations)
    denied: list[FieldViolation] = []
    _check_steps(spec, engine, violations)
    items: list[ItemPlan] = []
    resolved: dict[str, Any] = {}
    frames = None if spec.input.video else _frames(spec.input, max_items, violations)
    if spec.input.video:
        items, resolved = plan_video(spec, sandbox, max_items, violations, denied)
    elif frames is not None:
        if not spec.output_pattern:
            violations.append(FieldViolation("job.output_pattern", "required, e.g. renders/sh010.####.exr"))
        elif spec.output_pattern.endswith(("/", "\\")) or not _suffix(spec.output_pattern):
            # 'g/####/' wrote extensionless PNGs named g/0001 and reported 'g/0001/'.
            violations.append(FieldViolation("job.output_pattern", f"{spec.output_pattern!r} names no file "
                                             "with an extension: e.g. renders/sh010.####.exr"))
        elif len(frames) > 1 and not has_frame_run(spec.output_pattern):
            violations.append(
                FieldViolation(
                    "job.output_pattern",
                    f"needs {FRAME_RUN_WORDS}, or every frame would overwrite the same file",
                )
            )
        else:
            items = _items(spec, frames, sandbox, violations, denied)
    if spec.steps and not spec.input.video and not denied:  # a path refused outright says so first
        _format_of_output(spec, engine, violations)
    if spec.format and spec.steps and not spec.input.video:
        last = spec.steps[len(spec.steps) - 1].effect
        if last in engine.effects and spec.format not in engine.effects[last].formats:
            violations.append(
                FieldViolation(
                    "job.format", f"{last} writes {list(engine.effects[last].formats)}, not {spec.format!r}"
                )
            )
    if violations:
        raise InvalidArgument("invalid job", violations)
    if denied:
        raise PermissionDenied("job paths outside the sandbox", denied)
    stored = json_format.MessageToDict(spec, preserving_proto_field_name=True)
    stored["input"] = {**stored.get("input", {}), **resolved}
    if not spec.HasField("seed"):
        stored["seed"] = str(secrets.randbits(63))  # one seed for every frame: a stable look
    return JobPlan(stored, steps_of(stored), tuple(items))


def check_sizes(spec: jobs_pb2.JobSpec, max_items: int) -> list[FieldViolation]:
    """A violation for every field over its size limit."""
    found: list[FieldViolation] = []

    def at_most(field: str, size: int, limit: int, unit: str = "characters") -> None:
        if size > limit:
            found.append(FieldViolation(field, f"{size:,} {unit}; at most {limit:,}"))

    at_most("job.steps", len(spec.steps), MAX_STEPS, "steps")
    for i, step in enumerate(spec.steps[:MAX_STEPS]):
        at_most(f"job.steps[{i}].effect", len(step.effect), MAX_EFFECT_CHARS)
        at_most(f"job.steps[{i}].parameters", step.parameters.ByteSize(), MAX_PARAMETERS_BYTES, "bytes")
    at_most("job.input.pattern", len(spec.input.pattern), MAX_PATH_CHARS)
    at_most("job.input.video", len(spec.input.video), MAX_PATH_CHARS)
    at_most("job.input.paths", len(spec.input.paths), max_items, "paths")
    at_most("job.input.paths", sum(len(p.encode()) for p in spec.input.paths), MAX_PATHS_BYTES, "bytes")
    long_path = next((i for i, p in enumerate(spec.input.paths) if len(p) > MAX_PATH_CHARS), None)
    if long_path is not None:
        at_most(f"job.input.paths[{long_path}]", len(spec.input.paths[long_path]), MAX_PATH_CHARS)
    at_most("job.output_pattern", len(spec.output_pattern), MAX_PATH_CHARS)
    at_most("job.format", len(spec.format), MAX_FORMAT_CHARS)
    at_most("job.idempotency_key", len(spec.idempotency_key), MAX_KEY_CHARS)
    at_most("job.description", len(spec.description), MAX_DESCRIPTION_CHARS)
    return found


def _check_steps(spec: jobs_pb2.JobSpec, engine: Engine, violations: list[FieldViolation]) -> None:
    if not spec.steps:
        violations.append(FieldViolation("job.steps", "give at least one effect"))
    for i, step in enumerate(spec.steps):
        field = f"job.steps[{i}]"
        try:
            parameters = struct_to_dict(step.parameters, f"{field}.parameters")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            continue
        try:
            effect, problems = engine.check_effect(step.effect, parameters)
        except NotFound as exc:
            violations.append(FieldViolation(f"{field}.effect", exc.message))
            continue
        violations.extend(FieldViolation(f"{field}.{p.field}", p.description) for p in problems)
        several = None if problems else _several_images(effect, parameters)
        if several is not None:
            violations.append(FieldViolation(f"{field}.{several[0]}", several[1]))
        if effect.min_inputs != 1:
            violations.append(
                FieldViolation(
                    f"{field}.effect",
                    f"{effect.name} takes {effect.min_inputs} inputs; a job step "
                    "works on one frame at a time",
                )
            )
        elif spec.input.video and "png" not in effect.formats:
            violations.append(
                FieldViolation(
                    f"{field}.effect",
                    f"{effect.name} does not make images; a video's frames need one that does",
                )
            )
        elif any(f in VIDEO_INPUT_FORMATS for f in effect.input_formats):
            violations.append(
                FieldViolation(
                    f"{field}.effect",
                    f"{effect.name} reads a video file whole; a job step works on one frame at a time "
                    "(call ApplyEffect with the video instead)",
                )
            )


def _several_images(effect: Effect, parameters: dict[str, Any]) -> tuple[str, str] | None:
    """The parameter asking ``effect`` for several images of each frame, and why a step may not.

    How many results an effect makes is known for sure only once it ran (ApplyEffect over a video
    counts frame 0's, and each job item its frame's); a job cannot run one at submission, but the
    way a caller asks for several is a ``count`` parameter (as a generator's ``count`` names its
    results), which is read here, defaults included."""
    params, _ = validate_parameters(effect.name, effect.parameters, parameters, kind="effect")
    count = getattr(params, "count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count <= 1:
        return None
    return ("parameters.count", f"a job step makes one image of each frame, and {effect.name} with count "
            f"{count} makes {count} of each; leave count at 1 (a job per variation, each with its own "
            "seed, makes the others)")


def _frames(
    sequence: jobs_pb2.InputSequence, max_items: int, violations: list[FieldViolation]
) -> list[tuple[int, str]] | None:
    """(frame number, input path) per item, or None after recording what is wrong."""
    if sequence.pattern and sequence.paths:
        violations.append(FieldViolation("job.input", "give a pattern or a list of paths, not both"))
        return None
    if sequence.paths:
        if len(sequence.paths) > max_items:
            violations.append(
                FieldViolation("job.input.paths", f"{len(sequence.paths)} paths exceed {max_items}")
            )
            return None
        return list(enumerate(sequence.paths))
    if not sequence.pattern:
        violations.append(FieldViolation("job.input", "give a pattern (e.g. plates/sh010.####.exr) or paths"))
        return None
    if not has_frame_run(sequence.pattern):
        violations.append(
            FieldViolation("job.input.pattern", f"needs exactly {FRAME_RUN_WORDS}, e.g. "
                                                "plates/sh010.####.exr")
        )
        return None
    first, last = sequence.first_frame, sequence.last_frame
    if last < first:
        violations.append(FieldViolation("job.input.last_frame", f"{last} is before first_frame {first}"))
        return None
    if last - first + 1 > max_items:
        violations.append(
            FieldViolation(
                "job.input.last_frame", f"{last - first + 1} frames exceed the limit of {max_items} per job"
            )
        )
        return None
    return [(f, frame_path(sequence.pattern, f)) for f in range(first, last + 1)]


def _items(
    spec: jobs_pb2.JobSpec,
    frames: list[tuple[int, str]],
    sandbox: Sandbox,
    violations: list[FieldViolation],
    denied: list[FieldViolation],
) -> list[ItemPlan]:
    def refused(field: str, exc: PathRefused) -> list[ItemPlan]:
        (denied if exc.permission else violations).append(FieldViolation(field, str(exc)))
        return []

    sources: set[Path] = set()
    for index, (_, input_path) in enumerate(frames):
        try:
            sources.add(sandbox.input_path(input_path))
        except PathRefused as exc:
            return refused(f"job.input.paths[{index}]" if spec.input.paths else "job.input.pattern", exc)
    if frames and all(not_a_file(source) for source in sources):
        # Not one frame there: a wrong pattern or root, said now rather than as a failure per frame.
        # (A job over frames still being written needs only its first to exist.)
        field = "job.input.paths" if spec.input.paths else "job.input.pattern"
        violations.append(FieldViolation(field, f"none of the {len(frames):,} input frames exists (the first "
                                                f"is {frames[0][1]!r}, relative to the first input root)"))
        return []
    items = []
    outputs: set[Path] = set()
    numbered = has_frame_run(spec.output_pattern)
    for frame, input_path in frames:
        output = frame_path(spec.output_pattern, frame) if numbered else spec.output_pattern
        try:
            target = sandbox.output_path(output)
        except PathRefused as exc:
            return refused("job.output_pattern", exc)
        if target in sources:
            # A frame rewritten in place could be processed twice by a resume after a crash.
            violations.append(
                FieldViolation("job.output_pattern", f"{output} would overwrite an input frame")
            )
            return []
        if target in outputs:
            violations.append(FieldViolation("job.output_pattern", f"two items would both write {output}"))
            return []
        outputs.add(target)
        items.append(ItemPlan(frame, input_path, output))
    return items

"""``museforge generate`` and ``museforge apply``: one path for both, since an effect is a generator
with inputs. Only where the files go differs: generate writes into a directory as artifacts arrive,
apply names its results after the output file once it knows how many there are."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import partial, wraps
from pathlib import Path
from typing import Any

import grpc

from .media_files import (
    SUFFIX_FORMATS,
    UnwritableOutput,
    check_target_file,
    clash_refusal,
    clashing_results,
    distinct,
    extension_clash,
    file_result,
    format_name,
    input_refusal,
    names_a_file,
    output_folder,
    overwritten_input,
    picture_files,
)
from .media_lookups import formats_of, output_format, parameters_of, whole_video_format
from .options import COUNT, SEED, Subcommands, add_target_flags, connect, parse_param, settings_from
from .output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Bar,
    ConnectionLost,
    broke_off,
    fail,
    refusal_of,
    report_written,
    stdout_refusal,
    to_stdout,
    write_file,
    write_stdout,
)
from .video_apply import apply_to_video, effect_shape, is_video


@dataclass(frozen=True)
class MediaCall:
    """What the flags ask for; ``inputs`` (name, bytes) make it an effect's call, None a generator's.
    An input given as a Path (a whole video) is read where it lies in this process, sent as bytes
    to a server."""

    name: str
    parameters: dict[str, Any]
    seed: int | None
    fmt: str
    count: int = 1
    inputs: list[tuple[str, bytes | Path]] | None = None

    def sent(self) -> list[tuple[str, bytes]]:
        return [(name, data.read_bytes() if isinstance(data, Path) else data)
                for name, data in self.inputs or ()]


@dataclass(frozen=True)
class Step:
    """Progress, from the engine or a server."""

    done: int
    total: int
    stage: str


@dataclass(frozen=True)
class Made:
    """An artifact, from the engine or a server."""

    filename: str
    index: int
    data: bytes
    part: str = ""  # a named part of artifact ``index`` (an audio stem)


Event = int | Step | Made  # an int is the seed the call runs with


def local_events(args: argparse.Namespace, call: MediaCall) -> Generator[Event, None, None]:
    """Validate and run the call in this process (--local)."""
    from ..engine.catalogue import Artifact, EffectInput, Engine
    from ..engine.generator import Progress

    logging.basicConfig(level="WARNING")
    engine = Engine(settings_from(args)).start()
    if call.inputs is None:
        request = engine.prepare(call.name, call.parameters, call.seed, call.count, call.fmt)
        seed, events = request.seed, engine.run(request)
    else:
        inputs = [EffectInput(b"", name, path=data) if isinstance(data, Path) else EffectInput(data, name)
                  for name, data in call.inputs]
        prepared = engine.prepare_effect(call.name, call.parameters, inputs, call.seed, call.fmt)
        seed, events = prepared.seed, engine.run(prepared)
    yield seed
    for event in events:
        if isinstance(event, Artifact):
            yield Made(event.filename, event.index, event.data, event.metadata.get("part", ""))
        elif isinstance(event, Progress):
            yield Step(event.completed, event.total, event.stage)


def remote_events(args: argparse.Namespace, call: MediaCall) -> Generator[Event, None, None]:
    """Stream the call from the server the flags name."""
    with connect(args) as client:
        if call.inputs is None:
            stream = client.stream_generate(call.name, call.parameters, seed=call.seed, count=call.count,
                                            fmt=call.fmt)
        else:
            stream = client.stream_apply_effect(call.name, call.sent(), call.parameters, seed=call.seed,
                                                fmt=call.fmt)
        seed: int | None = None
        try:
            for message in stream:
                kind = message.WhichOneof("event")
                if kind == "seed":
                    seed = message.seed
                    yield message.seed
                elif kind == "progress":
                    yield Step(message.progress.completed, message.progress.total, message.progress.stage)
                elif kind == "artifact":
                    artifact = message.artifact
                    part = artifact.metadata.get("part", "")
                    yield Made(artifact.filename, artifact.index, artifact.data, part)
        except grpc.RpcError as exc:
            if seed is None or not broke_off(exc):  # refused, or never connected: main says which
                raise
            raise ConnectionLost(f"the connection to the server was lost in the middle of {call.name} "
                                 f"({exc.details()}); run it again once the server is back (--seed {seed} "
                                 "gives the same results)") from None


def produce(args: argparse.Namespace, call: MediaCall, keep: Callable[[Made], Any],
            bar: Bar | None = None) -> int | None:
    """Run the call here or on a server, showing its progress on ``bar`` (one of its own if not
    given); hands every artifact to ``keep`` and returns the seed it ran with."""
    bar = bar or Bar()
    seed = call.seed
    try:  # a failure's message goes on a line of its own, not after the progress
        with closing(local_events(args, call) if args.local else remote_events(args, call)) as events:
            for event in events:
                if isinstance(event, Made):
                    keep(event)
                elif isinstance(event, Step):
                    bar.update(event.done, event.total, event.stage)
                else:
                    seed = event
    finally:
        bar.close()
    return seed


def output_problems_are_usage_errors(command: Callable[[argparse.Namespace], int]) -> Callable[
        [argparse.Namespace], int]:
    """An -o that cannot be written is a mistake on the command line (exit 2), said before any work."""
    @wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except UnwritableOutput as exc:
            return fail(str(exc), EXIT_USAGE)
    return run


def send_to_stdout(args: argparse.Namespace, call: MediaCall) -> int:
    """-o -: the one result's bytes on stdout, and nothing else there."""
    results: list[Made] = []
    seed = produce(args, call, results.append)
    if len(results) != 1:  # stems, a walk's frames: known only once made
        return fail(stdout_refusal(args, len(results)), EXIT_USAGE)
    write_stdout(results[0].data)
    print(f"{results[0].filename} written to stdout (seed {seed})", file=sys.stderr)
    return EXIT_OK


@output_problems_are_usage_errors
def cmd_generate(args: argparse.Namespace) -> int:
    clash = extension_clash(args.output, args.format)
    if clash:
        return fail(clash, EXIT_USAGE)
    to_file = names_a_file(args.output)
    fmt = format_name(args.format) or (SUFFIX_FORMATS[args.output.suffix.lower()] if to_file else "")
    if to_file:  # -o song.mp3 for music: said before anything runs, with what it can write instead
        formats = formats_of(args, args.generator)
        if formats is not None and fmt not in formats:
            return fail(f"-o {args.output}: {args.generator} cannot write {fmt}; it writes "
                        f"{', '.join(formats)}", EXIT_USAGE)
    stdout = to_stdout(args.output)
    if stdout and stdout_refusal(args, args.count):
        return fail(stdout_refusal(args, args.count), EXIT_USAGE)
    if to_file:
        check_target_file(args.output)
    call = MediaCall(args.generator, parameters_of(args, args.generator), args.seed, fmt, count=args.count)
    if stdout:
        return send_to_stdout(args, call)
    with output_folder(args.output.parent if to_file else args.output, args.output) as written:
        if to_file:  # numbered only once it is known there are several (a walk's frames, stems)
            results: list[Made] = []
            seed = produce(args, call, results.append)
            several = len({made.index for made in results}) > 1
            for made in results:
                path = file_result(args.output, made.part, made.index, several)
                written.append(write_file(path.parent, path.name, made.data))
            report_written(args, written, seed)
        else:  # each file said as it is written: a run stopped part way still tells what it left
            bar = Bar()

            def keep(made: Made) -> None:
                written.append(write_file(args.output, made.filename, made.data))
                if not getattr(args, "json", False):
                    bar.clear()  # the name on a line of its own, not after the progress
                    print(written[-1], flush=True)

            seed = produce(args, call, keep, bar)
            if getattr(args, "json", False):
                report_written(args, written, seed)
    print(f"{len(written)} file(s) written to {args.output} (seed {seed})", file=sys.stderr)
    return EXIT_OK


@output_problems_are_usage_errors
def cmd_apply(args: argparse.Namespace) -> int:
    clash = extension_clash(args.output, args.format)
    if clash:
        return fail(clash, EXIT_USAGE)
    video = any(is_video(path) for path in args.inputs)
    shape = effect_shape(args) if video else None
    whole = shape is not None and shape.whole_video
    if video and not whole:
        return apply_to_video(args, shape)
    try:
        paths = args.inputs if whole else picture_files(args.inputs)
    except OSError as exc:
        return fail(f"cannot read {exc.filename}: {exc.strerror}", EXIT_USAGE)
    to_file = names_a_file(args.output, any_extension=True)
    stdout = to_stdout(args.output)
    if stdout and stdout_refusal(args, 1 if whole else len(paths)):
        return fail(stdout_refusal(args, 1 if whole else len(paths)), EXIT_USAGE)
    if to_file:
        check_target_file(args.output)
    if len(paths) > 1 and not whole:
        shape = effect_shape(args)
        # A 1-input effect over each file in turn; a folder is a batch for any effect a picture
        # alone can take (a folder of drawings into effect.sketch), never its inputs in name order.
        folder = shape is not None and shape.min_inputs == 1 and any(p.is_dir() for p in args.inputs)
        if shape is not None and (shape.max_inputs == 1 or folder):
            return apply_each(args, paths, to_file)
    inputs: list[tuple[str, bytes | Path]] = []
    for path in paths:
        try:
            inputs.append((path.name, path if whole and path.is_file() else path.read_bytes()))
        except OSError as exc:
            return fail(f"cannot read {path}: {exc.strerror}", EXIT_USAGE)
    if to_file and input_refusal(args.output, paths):
        return fail(input_refusal(args.output, paths), EXIT_USAGE)
    first = inputs[0][1]
    fmt = whole_video_format(args) if isinstance(first, Path) else output_format(args, first)
    call = MediaCall(args.effect, parameters_of(args, args.effect), args.seed, fmt, inputs=inputs)
    if stdout:
        return send_to_stdout(args, call)
    # The folder first: one that cannot be made is said before the effect runs, not after.
    with output_folder(args.output.parent if to_file else args.output, args.output) as written:
        results: list[Made] = []
        seed = produce(args, call, results.append)
        several = len({made.index for made in results}) > 1
        for made in results:
            path = (file_result(args.output, made.part, made.index, several) if to_file
                    else args.output / Path(made.filename).name)
            written.append(write_file(path.parent, path.name, made.data))
    report_written(args, written, seed)
    print(f"{len(results)} file(s) written", file=sys.stderr)
    return EXIT_OK


def apply_each(args: argparse.Namespace, paths: Sequence[Path], to_file: bool) -> int:
    """A one-input effect over several files: each result named after its input (a-upscale.png),
    into the -o folder, never over an input nor over another's result (inputs whose results would
    share a name are refused before any work)."""
    if to_file:
        return fail(f"{len(paths)} inputs make {len(paths)} results: -o names a folder for them, "
                    f"not the file {args.output}", EXIT_USAGE)
    paths = distinct(paths)  # one file given twice is done once
    clashes = clashing_results(paths, args.format)
    if clashes:
        return fail(clash_refusal(clashes, args.effect, args.format), EXIT_USAGE)
    short = args.effect.rpartition(".")[2]
    parameters = parameters_of(args, args.effect)
    refused: list[Path] = []
    made_from: dict[Path, Path] = {}  # each result's input: what the names above did not foresee
    with output_folder(args.output, args.output) as written:
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError as exc:
                return fail(f"cannot read {path}: {exc.strerror}", EXIT_USAGE)
            call = MediaCall(args.effect, parameters, args.seed, output_format(args, data),
                             inputs=[(path.name, data)])
            results: list[Made] = []
            reason = refusal_of(partial(produce, args, call, results.append))
            if reason:  # this file's own problem (damaged, too big): said with its name, the rest go on
                refused.append(path)
                print(f"museforge: {path}: {reason}", file=sys.stderr, flush=True)
                continue
            for made in results:
                extension = Path(made.filename).suffix
                numbered = f"-{made.index:04d}" if len(results) > 1 else ""
                target = args.output / f"{path.stem}-{short}{numbered}{extension}"
                if overwritten_input(target, paths):
                    return fail(f"{target} is an input: choose another -o folder", EXIT_USAGE)
                if made_from.setdefault(target, path).resolve() != path.resolve():  # content unlike its name
                    return fail(clash_refusal([[made_from[target], path]], args.effect, args.format),
                                EXIT_USAGE)
                written.append(write_file(target.parent, target.name, made.data))
                if not getattr(args, "json", False):
                    print(written[-1], flush=True)
        if getattr(args, "json", False):
            report_written(args, written, args.seed)
    print(f"{len(written)} file(s) written from {len(paths)} inputs"
          + (f"; {len(refused)} refused, named above" if refused else ""), file=sys.stderr)
    return EXIT_FAILED if refused else EXIT_OK


def add_param_flag(parser: argparse.ArgumentParser, of: str) -> None:
    parser.add_argument("--param", "-p", action="append", type=parse_param, default=[],
                        metavar="KEY=VALUE", help=f"{of} parameter (repeatable)")


def add_generate_parser(sub: Subcommands) -> None:
    generate = sub.add_parser(
        "generate", help="generate media and write the files",
        description="Generate with a server (default) or in-process (--local).",
    )
    generate.add_argument("generator", help="dotted generator name, e.g. image.digits")
    add_param_flag(generate, "a generator")
    generate.add_argument("--seed", type=SEED, help="seed for reproducible output (default: a random one, "
                          "printed at the end)")
    generate.add_argument("--count", "-n", type=COUNT, default=1,
                          help="how many (default 1; the server's max_count, 64 unless set, is the most)")
    generate.add_argument("--format", "-f", default="", help="output format, e.g. png, jpeg, exr, ogg, glb "
                          "(default: -o's extension, else the generator's first; `museforge generators` "
                          "lists each one's)")
    generate.add_argument("--output", "-o", type=Path, default=Path("."),
                          help="folder for the files (created if missing; default: the current folder), "
                          "or a file such as out.png (several results are numbered out-0000.png ...); its "
                          "extension must be a format the generator writes, and agree with --format. A name "
                          "with an extension museforge does not know (renders.v2) is a folder; - writes the "
                          "result to stdout")
    add_target_flags(generate)
    generate.set_defaults(handler=cmd_generate)


def add_apply_parser(sub: Subcommands) -> None:
    apply = sub.add_parser(
        "apply", help="apply an effect to image or video files and write the results",
        description="Apply an effect (upscale, denoise, ...) with a server (default) or "
        "in-process (--local). The output keeps the input's format unless --format or the "
        "output file's extension says otherwise. A video (MP4, MOV, MKV, WebM) goes through "
        "the effect frame by frame into -o out.mp4 (H.264) or out.mov (ProRes 422 HQ), with its "
        "frame rate, colour description, timecode and audio kept. An effect that reads a video "
        "whole (video.shots) writes what it makes, its format from -o's extension: "
        "museforge apply video.shots take.mp4 -o take.edl (or .json, .otio).",
    )
    apply.add_argument("effect", help="dotted effect name, e.g. effect.upscale")
    apply.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                       help="input file(s): PNG (8/16-bit), JPEG, WebP or OpenEXR, or folders of them; or "
                       "one video. Several into an effect that takes one: each in turn, written as "
                       "<input>-<effect>.<ext> into the -o folder (inputs whose results would share a "
                       "name are refused)")
    add_param_flag(apply, "an effect")
    apply.add_argument("--format", "-f", default="", help="output format: png, png16, jpeg (or jpg), webp, "
                       "exr (default: -o's extension, else the input's; when both are given they must agree)")
    apply.add_argument("--seed", type=SEED, help="seed, for effects with randomness")
    apply.add_argument("--output", "-o", type=Path, default=Path("."),
                       help="output file (e.g. out.png) or directory (default: current directory); "
                       "several results from one file name are numbered out-0000.png, ...; - writes the "
                       "result to stdout")
    add_target_flags(apply)
    apply.set_defaults(handler=cmd_apply)

"""``museforge feedback``: record ratings, picks and keeps on artifacts; list, export and forget them;
ask what a user likely wants next."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import IO, Any

from .options import Subcommands, add_server_flags, connect, parse_param
from .output import EXIT_OK, EXIT_USAGE, fail

SHA256 = re.compile(r"[0-9a-fA-F]{64}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LIST_HEADER = ("TIME (UTC)", "KIND", "VALUE", "ARTIFACT", "MADE BY")
RECOMMEND_HEADER = ("SCORE", "ITEM", "WHY")
FEEDBACK_EPILOG = """examples:
  museforge generate image.digits -p digit=7 --count 2 -o out/
  museforge feedback rate out/image.digits-42-0000.png --up --user ann
  museforge feedback rate out/image.digits-42-0001.png --stars 4 --user ann
  museforge feedback pick out/image.digits-42-0001.png out/image.digits-42-0000.png --user ann
  museforge feedback keep out/image.digits-42-0001.png --user ann
  museforge feedback list --user ann
  museforge feedback export --all-users -o feedback.jsonl
  museforge feedback recommend artifacts --user ann -k 5
  museforge feedback recommend presets --user ann --generator image.tiles
  museforge feedback forget --user ann --yes

An ARTIFACT is a file museforge made (its sha256 is computed and its provenance read
from it, in every format but STL) or, when the file is not at hand, its sha256 with
--generator/--effect, --seed, --model-version and -p KEY=VALUE for the rest.

Whose feedback: with auth on, the API key's own, or --user for a user of the caller's
own (kept under the key: another key never sees it). With auth off, --user is required.
"""


def add_feedback_parser(sub: Subcommands) -> None:
    feedback = sub.add_parser(
        "feedback",
        help="ratings, picks and keeps on artifacts, per user",
        description="Tell the server what a user thought of the artifacts it made: thumbs or "
        "stars, a pick among several, a keep. Events are stored durably per user and can be listed, "
        "exported as JSON lines, or deleted (a user's right to be forgotten).",
        epilog=FEEDBACK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = feedback.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    rate = actions.add_parser("rate", help="thumbs up or down, or 1-5 stars, on one artifact",
                              epilog=FEEDBACK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rate.add_argument("artifact", metavar="ARTIFACT", help="the artifact's file, or its sha256")
    value = rate.add_mutually_exclusive_group(required=True)
    value.add_argument("--up", action="store_true", help="thumbs up")
    value.add_argument("--down", action="store_true", help="thumbs down")
    value.add_argument("--stars", type=int, choices=range(1, 6), metavar="1-5", help="one to five stars")
    add_provenance_flags(rate)
    pick = actions.add_parser("pick", help="the first ARTIFACT was chosen over the others shown with it",
                              epilog=FEEDBACK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    pick.add_argument("chosen", metavar="CHOSEN", help="the artifact chosen (file or sha256)")
    pick.add_argument("others", metavar="OTHER", nargs="+", help="the artifacts shown beside it")
    add_provenance_flags(pick)
    keep = actions.add_parser("keep", help="the user kept or downloaded an artifact")
    keep.add_argument("artifact", metavar="ARTIFACT", help="the artifact's file, or its sha256")
    add_provenance_flags(keep)
    shown = actions.add_parser("shown", help="the user was shown an artifact (no opinion): it enters the "
                               "artifacts recommend ranks")
    shown.add_argument("artifact", metavar="ARTIFACT", help="the artifact's file, or its sha256")
    add_provenance_flags(shown)
    listing = actions.add_parser("list", help="a user's events, oldest first")
    listing.add_argument("--user", default="", help="whose (default: the API key's own)")
    export = actions.add_parser("export", help="a user's events (or every user's) as JSON lines")
    whose = export.add_mutually_exclusive_group()
    whose.add_argument("--user", default="", help="whose (default: the API key's own)")
    whose.add_argument("--all-users", action="store_true",
                       help="every user the key recorded (with auth off: every event recorded without a key)")
    export.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write to FILE instead of stdout (- is stdout); its folder must exist")
    recommend = actions.add_parser(
        "recommend", help="generators, presets or artifacts a user likely wants next, with reasons",
        description="Ranked from the feedback of all the key's users (implicit's ALS, with new artifacts "
        "ranked by their generator and parameters); a user with no feedback gets what most users liked.")
    recommend.add_argument("kind", choices=("generators", "presets", "artifacts"), help="what to recommend")
    recommend.add_argument("--user", default="", help="for whom (default: the API key's own)")
    recommend.add_argument("-k", type=int, default=10, help="how many, 1-100 (default 10)")
    recommend.add_argument("--generator", default="", help="only items of this generator")
    recommend.add_argument("--refresh", action="store_true",
                           help="refit on every event so far first (otherwise the last fitted model)")
    forget = actions.add_parser("forget", help="delete every event of a user (cannot be undone)")
    forget.add_argument("--user", default="", help="whose (default: the API key's own)")
    forget.add_argument("--yes", action="store_true", required=True,
                        help="confirm: the events are deleted for good")
    for action in actions.choices.values():
        add_server_flags(action)
    feedback.set_defaults(handler=cmd_feedback)


def add_provenance_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default="", help="the user it is from (default: the API key itself)")
    parser.add_argument("--request-id", default="", metavar="ID",
                        help="an id of your own (e.g. a UUID) that makes running the command again safe: "
                        "the event is recorded once")
    parser.add_argument("--generator", help="the generator that made it (default: from the file)")
    parser.add_argument("--effect", help="or the effect that made it (default: from the file)")
    parser.add_argument("--seed", type=int, help="its seed (default: from the file)")
    parser.add_argument("--model-version", help="its model's version (default: from the file)")
    parser.add_argument("--index", type=int, help="which of its request's artifacts it is, from 0 "
                        "(default: from the file)")
    parser.add_argument("--param", "-p", action="append", type=parse_param, default=[], metavar="KEY=VALUE",
                        help="one of its parameters (repeatable; replaces those read from the file)")


def provenance_of(data: bytes, path: Path, args: argparse.Namespace) -> dict[str, str]:
    """The provenance a museforge file carries, read by the encoder of its format (any format an
    installed plugin writes and can read back; PNG without loading the plugins)."""
    from ..engine.codecs.encoders import quietly, read_png_provenance

    if data.startswith(PNG_SIGNATURE):
        return quietly(read_png_provenance)(data)
    encoders = _encoders(getattr(args, "config", None), getattr(args, "plugins", None), args)
    suffix = path.suffix.lower().lstrip(".")
    for encoder in sorted(encoders, key=lambda e: e.extension.lower() != suffix):  # its own first
        found = encoder.read_provenance(data) if encoder.read_provenance else {}
        if found:
            return found
    return {}


_ENCODERS: dict[tuple[Any, Any], list[Any]] = {}


def _encoders(config: Any, plugins: Any, args: argparse.Namespace) -> list[Any]:
    """The installed plugins' encoders, loaded once per command (a pick names several files)."""
    if (config, plugins) not in _ENCODERS:
        from ..engine.catalogue import Engine
        from .options import settings_from

        _ENCODERS[config, plugins] = list(Engine(settings_from(args)).host.load().encoders.values())
    return _ENCODERS[config, plugins]


class NotAnArtifact(Exception):
    """An ARTIFACT on the command line that is no readable file and no sha256: a usage error (exit 2)."""


def artifact_reference(text: str, args: argparse.Namespace) -> Any:
    """An ArtifactRef from a file (hashed, its provenance read) or a bare sha256, with the flags over it."""
    from ..client import artifact_ref
    from ..v1 import feedback_pb2 as fb

    path = Path(text)
    if SHA256.fullmatch(text) and not path.exists():
        ref = fb.ArtifactRef(sha256=text.lower())
    elif not path.exists():
        raise NotAnArtifact(f"{text}: no such file (an ARTIFACT is a file museforge made, or a sha256 of "
                            "64 hexadecimal digits)")
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:  # a folder, or not readable by this user
            raise NotAnArtifact(f"{text}: cannot be read ({exc.strerror or exc})") from None
        ref = artifact_ref(data, provenance_of(data, path, args))
    if args.generator is not None or args.effect is not None:
        ref.generator, ref.effect = args.generator or "", args.effect or ""
    if args.seed is not None:
        ref.seed = args.seed
    if args.model_version is not None:
        ref.model_version = args.model_version
    if args.index is not None:
        if not 0 <= args.index < 2**32:
            raise SystemExit(f"museforge feedback: --index must be 0 or more, got {args.index}")
        ref.index = args.index
    if args.param:
        ref.parameters.Clear()
        ref.parameters.update(dict(args.param))
    return ref


def event_json(event: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    from ..client_structs import whole_numbers

    return dict(whole_numbers(json_format.MessageToDict(event)))


def describe(event: Any) -> tuple[str, str, str, str, str]:
    """One listing row: time, kind, value, artifact (short sha256) and what made it."""
    from ..v1 import feedback_pb2 as fb

    kind = fb.FeedbackKind.Name(event.kind).removeprefix("FEEDBACK_KIND_").lower()
    value = {fb.FEEDBACK_KIND_THUMBS: fb.Thumb.Name(event.thumb).removeprefix("THUMB_").lower(),
             fb.FEEDBACK_KIND_STARS: f"{event.stars} stars",
             fb.FEEDBACK_KIND_PICK: f"1 of {len(event.candidates)}"}.get(event.kind, "")
    made_by = event.artifact.generator or event.artifact.effect
    when = event.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
    return when, kind, value, event.artifact.sha256[:16], made_by


def record(client: Any, args: argparse.Namespace) -> Any:
    from ..client import feedback_event

    command = args.feedback_command
    if command == "pick":
        candidates = [artifact_reference(a, args) for a in (args.chosen, *args.others)]
        event = feedback_event("pick", candidates[0], user=args.user, candidates=candidates)
    else:
        ref = artifact_reference(args.artifact, args)
        if command in ("keep", "shown"):
            event = feedback_event(command, ref, user=args.user)
        elif args.stars is not None:
            event = feedback_event("stars", ref, user=args.user, stars=args.stars)
        else:
            event = feedback_event("thumbs", ref, user=args.user, thumb="up" if args.up else "down")
    return client.record_feedback(event, request_id=args.request_id)


def write_lines(events: Any, out: IO[str]) -> int:
    count = 0
    for event in events:
        out.write(json.dumps(event_json(event), sort_keys=True) + "\n")
        count += 1
    return count


def export_target_problem(output: Path) -> str:
    """Why the export cannot be written to -o ``output`` ('' when it can): said before the server is
    asked, so a long export is not streamed only to fail at its end."""
    from .media_files import UnwritableOutput, blocking_file, check_target_file, check_writable

    if output.is_dir():
        example = output / "feedback.jsonl"
        return f"-o {output} is a folder; give a file name (e.g. {example}), or - for stdout"
    folder = output.parent
    blocking = blocking_file(folder)
    if blocking is not None:
        return f"-o {output}: {blocking} is a file, not a folder"
    if not folder.exists():
        return f"-o {output}: there is no folder {folder}; make it first"
    try:
        check_target_file(output, "give a file name, or - for stdout")
        check_writable(folder, output)
    except UnwritableOutput as exc:
        return str(exc)
    return ""


def export(client: Any, args: argparse.Namespace) -> int:
    to_file = args.output is not None and str(args.output) != "-"  # -o -: stdout, as elsewhere
    if to_file:
        problem = export_target_problem(args.output)
        if problem:
            return fail(problem, EXIT_USAGE)
    events = client.export_feedback(args.user, all_users=args.all_users)
    if not to_file:
        count = write_lines(events, sys.stdout)
    else:  # written beside the target and moved in place: a failed export leaves no half file
        partial = args.output.with_name(args.output.name + ".part")
        try:
            with partial.open("w", encoding="utf-8") as out:
                count = write_lines(events, out)
            partial.replace(args.output)
        except OSError as exc:  # name the file asked for, not the temporary one beside it
            partial.unlink(missing_ok=True)
            raise OSError(exc.errno, exc.strerror, str(args.output)) from None
        except BaseException:  # the server refused or broke off: remove what was written so far
            partial.unlink(missing_ok=True)
            raise
    print(f"exported {count} events", file=sys.stderr)
    return EXIT_OK


def recommended_item(found: Any) -> str:
    """A generator's name, a preset's generator and parameters, or an artifact's sha256 and maker."""
    which = found.WhichOneof("item")
    if which == "generator":
        return str(found.generator)
    if which == "preset":
        from google.protobuf import json_format

        from ..client_structs import whole_numbers
        parameters = json.dumps(whole_numbers(json_format.MessageToDict(found.preset.parameters)),
                                sort_keys=True)
        return f"{found.preset.generator} {parameters}"
    artifact = found.artifact
    return f"{artifact.sha256[:16]}... {artifact.generator or artifact.effect} seed {artifact.seed}"


def cmd_feedback(args: argparse.Namespace) -> int:
    from .output import print_table

    command = args.feedback_command
    if command in ("rate", "pick", "keep", "shown") and args.generator and args.effect:
        return fail("give --generator or --effect, not both", EXIT_USAGE)
    with connect(args, timeout=60) as client:
        if command in ("rate", "pick", "keep", "shown"):
            try:
                event = record(client, args)
            except NotAnArtifact as exc:
                return fail(str(exc), EXIT_USAGE)
            print(json.dumps(event_json(event), indent=2) if args.json else event.id)
            return EXIT_OK
        if command == "list":
            events = client.list_feedback(args.user)
            if args.json:
                print(json.dumps([event_json(e) for e in events], indent=2))
            else:
                print_table([describe(e) for e in events], LIST_HEADER)
            return EXIT_OK
        if command == "export":
            return export(client, args)
        if command == "recommend":
            if not 1 <= args.k <= 100:
                return fail("-k must be 1 to 100", EXIT_USAGE)
            reply = client.recommend(args.kind, args.user, args.k, args.generator, args.refresh)
            if args.json:
                from google.protobuf import json_format
                print(json.dumps(json_format.MessageToDict(reply), indent=2))
            else:
                rows = [(f"{r.score:.3f}", recommended_item(r), r.reason) for r in reply.recommendations]
                print_table(rows, RECOMMEND_HEADER)
            return EXIT_OK
        deleted = client.forget_user(args.user)
        print(json.dumps({"deleted": deleted}) if args.json else deleted)
        print(f"deleted {deleted} events of {args.user or 'this API key'}", file=sys.stderr)
        return EXIT_OK

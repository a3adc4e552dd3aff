"""``museforge job``: submit, list, inspect, watch, cancel, retry and delete batch jobs on a server."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf import json_format

from ..client_structs import to_struct
from .options import SEED, Subcommands, add_server_flags, connect, parse_param, whole_number
from .output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ConnectionLost, broke_off

JOB_EPILOG = """examples:
  museforge job submit --step effect.denoise -p sigma=25 --step effect.upscale -p scale=2 \\
      --input 'plates/sh010.####.png' --frames 1001-1240 --output 'clean/sh010.####.exr' --watch
  museforge job submit --step effect.denoise -p sigma=15 --video takes/sh020.mov --output clean/sh020.mov
  museforge job list --state running
  museforge job watch 3f2a9c0d1e4b5a6f
  museforge job cancel 3f2a9c0d1e4b5a6f
  museforge job retry 3f2a9c0d1e4b5a6f --watch   # its failed and skipped frames, once more

Paths are relative to the server's job roots (job_input_roots / job_output_roots);
'####' stands for the zero-padded frame number (as do '%04d' and '$F4').
"""


class StepAction(argparse.Action):
    """``--step NAME`` starts an effect step; the ``-p KEY=VALUE`` options after it belong to it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        steps = list(getattr(namespace, "steps", None) or [])
        if self.dest == "step":
            steps.append({"effect": values, "parameters": {}})
        elif not steps:
            parser.error(f"{option_string} {values[0]}=...: give --step EFFECT before its parameters")
        else:
            key, value = values
            steps[-1]["parameters"][key] = value
        namespace.steps = steps


FRAME_MAX = 2**63 - 1  # the job's frame fields are int64


def frame_range(text: str) -> tuple[int, int | None]:
    """FIRST-LAST, FIRST (one frame) or FIRST- (to a video's end: last None)."""
    first, sep, last = text.partition("-")
    try:
        start = int(first)
        end = (int(last) if last else None) if sep else start
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST (e.g. 1001-1240), got {text!r}") from None
    if not 0 <= start <= FRAME_MAX or not 0 <= (end or 0) <= FRAME_MAX:
        raise argparse.ArgumentTypeError(f"frame numbers must be 0 to {FRAME_MAX}, got {text!r}")
    return start, end


def video_frames(frames: tuple[int, int | None]) -> tuple[int, int]:
    """A video job's (first_frame, last_frame). The spec's last_frame 0 means the video's end, so
    an explicit last frame 0 would quietly become the whole video: refused instead."""
    first, last = frames
    if last == 0:
        print("museforge job submit: --frames for --video cannot end at frame 0 (a job's last frame 0 "
              f"means the video's end); give {first}- for frames {first} to the end", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    return first, last or 0


def add_job_parser(sub: Subcommands) -> None:
    job = sub.add_parser(
        "job",
        help="batch jobs: effect chains over frame sequences",
        description="Durable batch jobs on a server: they survive restarts, "
        "report progress per frame and can be cancelled.",
        epilog=JOB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = job.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    add_submit_parser(actions)
    listing = actions.add_parser("list", help="list jobs")
    listing.add_argument(
        "--state",
        choices=["queued", "running", "paused", "succeeded", "failed", "cancelled"],
        action="append",
        help="only jobs in this state (repeatable)",
    )
    for name, text in (
        ("status", "show one job"),
        ("watch", "follow a job's progress until it ends"),
        ("cancel", "stop a job (finished frames are kept)"),
        ("retry", "run an ended job's failed and skipped frames again (done ones are kept)"),
        ("delete", "forget a finished job (its output files stay)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("job", help="job id (or jobs/<id>)")
        if name == "status":
            action.add_argument("--items", action="store_true", help="list every item (frame) of the job")
        if name == "retry":
            only = action.add_mutually_exclusive_group()
            only.add_argument("--failed", dest="states", action="store_const", const=["failed"],
                              default=[], help="only the failed frames")
            only.add_argument("--skipped", dest="states", action="store_const", const=["skipped"],
                              help="only the frames a cancel skipped")
            action.add_argument("--watch", action="store_true", help="then watch it until it ends")
    for action in actions.choices.values():
        add_server_flags(action)
    job.set_defaults(handler=cmd_job)


def add_submit_parser(actions: Subcommands) -> None:
    submit = actions.add_parser(
        "submit",
        help="queue a job and print its id",
        epilog=JOB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument(
        "--step",
        action=StepAction,
        required=True,
        metavar="EFFECT",
        help="an effect to apply (repeat for a chain, in order)",
    )
    submit.add_argument(
        "--param",
        "-p",
        action=StepAction,
        type=parse_param,
        metavar="KEY=VALUE",
        help="a parameter of the --step before it (repeatable)",
    )
    source = submit.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", metavar="PATTERN", help="frame pattern, e.g. plates/sh010.####.exr")
    source.add_argument("--files", nargs="+", metavar="PATH", help="explicit input files instead")
    source.add_argument(
        "--video",
        metavar="PATH",
        help="a video file (MP4, MOV, MKV, WebM) instead: its frames in ranges, joined into the --output "
        "video (.mp4 or .mov) with its sound",
    )
    submit.add_argument(
        "--frames",
        type=frame_range,
        metavar="FIRST-LAST",
        help="frame range for --input (FIRST-LAST, or one frame); for --video, frames counted from 0, "
        "FIRST- for FIRST to the end (default: all)",
    )
    submit.add_argument(
        "--frames-per-item",
        type=whole_number(0, 2**31 - 1, "frames per item"),
        default=0,
        metavar="N",
        help="--video: frames per item, the unit done and, after a crash, redone (default 48)",
    )
    submit.add_argument(
        "--output",
        required=True,
        metavar="PATTERN",
        help="output pattern, e.g. clean/sh010.####.exr (list inputs count from 0); for --video, the "
        "video written, e.g. clean/sh010.mp4",
    )
    submit.add_argument("--format", "-f", default="", help="output format (default: each input's)")
    submit.add_argument("--key", default="", help="idempotency key: resubmitting it returns the same job")
    submit.add_argument("--seed", type=SEED, help="seed for effects with randomness (default: picked once)")
    submit.add_argument("--description", default="", help="free text shown in listings")
    submit.add_argument("--watch", action="store_true", help="then watch it until it ends")


def job_spec(args: argparse.Namespace) -> Any:
    from ..v1 import jobs_pb2

    spec = jobs_pb2.JobSpec(
        output_pattern=args.output, format=args.format, idempotency_key=args.key, description=args.description
    )
    for step in args.steps:
        spec.steps.add(effect=step["effect"], parameters=to_struct(step["parameters"]))
    if args.files:
        spec.input.paths.extend(args.files)
    elif args.video:
        spec.input.video, spec.input.frames_per_item = args.video, max(args.frames_per_item, 0)
        if args.frames is not None:
            spec.input.first_frame, spec.input.last_frame = video_frames(args.frames)
    else:
        if args.frames is None or args.frames[1] is None:
            print("museforge job submit: --input needs --frames FIRST-LAST", file=sys.stderr)
            raise SystemExit(EXIT_USAGE)
        spec.input.pattern = args.input
        spec.input.first_frame, spec.input.last_frame = args.frames[0], args.frames[1]
    if args.seed is not None:
        spec.seed = args.seed
    return spec


def metadata(operation: operations_pb2.Operation) -> Any:
    from ..v1 import jobs_pb2

    meta = jobs_pb2.JobMetadata()
    operation.metadata.Unpack(meta)
    return meta


def state_name(meta: Any) -> str:
    from ..v1 import jobs_pb2

    return str(jobs_pb2.JobState.Name(meta.state)).removeprefix("JOB_STATE_").lower()


def summary(meta: Any) -> str:
    chain = " -> ".join(s.effect for s in meta.job.steps)
    reason = f"\n  {meta.message}" if meta.message else ""
    return (
        f"job {meta.id}: {state_name(meta)}, {meta.done}/{meta.total} done, {meta.failed} failed, "
        f"{meta.skipped} skipped ({chain}){reason}"
    )


def as_json(operation: operations_pb2.Operation) -> dict[str, Any]:
    from ..v1 import jobs_pb2

    out: dict[str, Any] = {
        "name": operation.name,
        "done": operation.done,
        "metadata": json_format.MessageToDict(metadata(operation)),
    }
    if operation.HasField("response"):
        result = jobs_pb2.JobResult()
        operation.response.Unpack(result)
        out["result"] = json_format.MessageToDict(result)
    if operation.HasField("error"):
        out["error"] = {"code": operation.error.code, "message": operation.error.message}
    return out


def operation_json(operation: operations_pb2.Operation, watching: bool) -> str:
    """The Operation as --json prints it: indented alone, one line when --watch's item lines follow
    (stdout is then JSON Lines, one document a line, which a reader can parse line by line)."""
    return json.dumps(as_json(operation), indent=None if watching else 2)


def decile(done: int, total: int) -> int:
    """How many whole tenths of ``total`` are ``done`` (0 to 10)."""
    return 10 * done // total if total else 0


def watch(client: Any, job: str, as_json_lines: bool) -> int:
    import grpc

    from ..v1 import jobs_pb2

    last = None
    bar_enabled = sys.stderr.isatty()
    done = 0
    said = 0  # the last tenth of the job a log line was written for
    lost: grpc.RpcError | None = None
    try:  # a stream may end with an error (a paused job): the bar's line still ends
        for event in client.watch_job(job):
            kind = event.WhichOneof("event")
            if kind == "snapshot":
                last = event.snapshot
                done = last.done + last.failed + last.skipped
            else:
                item = event.item
                done += 1
                if as_json_lines:
                    print(json.dumps(json_format.MessageToDict(item)), flush=True)
                elif item.state == jobs_pb2.ITEM_STATE_FAILED:
                    where = f"frame {item.frame}" if item.last_frame == item.frame else (
                        f"frames {item.frame}-{item.last_frame}")
                    print(f"{where} failed: {item.error}", file=sys.stderr)
            if bar_enabled and last is not None and last.total:
                filled = int(30 * done / last.total)
                sys.stderr.write(f"\r{last.id} [{'#' * filled}{'.' * (30 - filled)}] {done}/{last.total}")
                sys.stderr.flush()
            elif not as_json_lines and last is not None and last.total:
                # A log (not a terminal): a line now and then, so a farm's log shows the job moving.
                step = decile(done, last.total)
                if step > said:
                    said = step
                    print(f"{last.id}: {done}/{last.total} items ({100 * done // last.total}%)",
                          file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # the watching stops; the job does not
        name = last.id if last is not None else job
        print(f"\nstopped watching; job {name} goes on on the server (museforge job cancel {name} stops it)",
              file=sys.stderr)
        raise
    except grpc.RpcError as exc:
        if last is None or not broke_off(exc):  # refused, or never connected: main says which
            raise
        lost = exc  # said below, once the bar's line has ended
    finally:
        if bar_enabled:
            sys.stderr.write("\n")
    if lost is not None and last is not None:
        raise ConnectionLost(
            f"the connection to the server was lost while watching job {last.id} ({lost.details()}); the job "
            f"is kept in the server's job store: `museforge job status {last.id}` once the server is back "
            "(a restarted server resumes it)")
    if last is None:
        return EXIT_FAILED
    print(summary(last), file=sys.stderr)
    return EXIT_OK if last.state == jobs_pb2.JOB_STATE_SUCCEEDED else EXIT_FAILED


def show_status(client: Any, job: str, with_items: bool, as_json_output: bool) -> int:
    from ..v1 import jobs_pb2

    operation = client.get_job(job)
    items = client.job_items(job) if with_items else iter(())
    if as_json_output:
        record = as_json(operation)
        if with_items:
            record["items"] = [json_format.MessageToDict(i) for i in items]
        print(json.dumps(record, indent=2))
        return EXIT_OK
    print(summary(metadata(operation)))
    for item in items:
        state = str(jobs_pb2.ItemState.Name(item.state)).removeprefix("ITEM_STATE_").lower()
        frames = f"{item.frame}" if item.last_frame == item.frame else f"{item.frame}-{item.last_frame}"
        print(f"  {frames:>8}  {state:<8} {item.output}  {item.error}".rstrip())
    return EXIT_OK


def print_jobs(operations: list[operations_pb2.Operation], as_json_output: bool) -> None:
    if as_json_output:
        print(json.dumps([as_json(o) for o in operations], indent=2))
        return
    rows = [metadata(o) for o in operations]
    widths = (16, 9, 12, 40)
    print("  ".join(h.ljust(w) for h, w in zip(("JOB", "STATE", "DONE", "CHAIN"), widths, strict=True)))
    for m in rows:
        cells = (m.id, state_name(m), f"{m.done}/{m.total}", " -> ".join(s.effect for s in m.job.steps))
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())


def retry(client: Any, args: argparse.Namespace) -> int:
    before = metadata(client.get_job(args.job))
    operation = client.retry_job(args.job, args.states)
    after = metadata(operation)
    again = after.total - after.done - after.failed - after.skipped
    failed, skipped = before.failed - after.failed, before.skipped - after.skipped
    print(operation_json(operation, args.watch) if args.json else after.id)
    print(f"retrying job {after.id}: {again} of {after.total} items run again ({failed} failed, {skipped} "
          f"skipped); {after.done} done are kept", file=sys.stderr)
    return watch(client, after.id, args.json) if args.watch else EXIT_OK


def cmd_job(args: argparse.Namespace) -> int:
    with connect(args, timeout=60) as client:
        if args.job_command == "submit":
            operation = client.submit_job(job_spec(args))
            meta = metadata(operation)
            print(operation_json(operation, args.watch) if args.json else meta.id)
            print(summary(meta), file=sys.stderr)
            return watch(client, meta.id, args.json) if args.watch else EXIT_OK
        if args.job_command == "list":
            filter_text = " OR ".join(f"state={s.upper()}" for s in args.state or [])
            print_jobs(client.list_jobs(filter_text), args.json)
            return EXIT_OK
        if args.job_command == "status":
            return show_status(client, args.job, args.items, args.json)
        if args.job_command == "watch":
            return watch(client, args.job, args.json)
        if args.job_command == "cancel":
            before = client.get_job(args.job)
            if before.done:  # nothing left to cancel: say how it ended rather than "cancelling"
                print(f"job {args.job} has already ended: {state_name(metadata(before))}", file=sys.stderr)
                return EXIT_OK
            client.cancel_job(args.job)
            print(f"cancelling {args.job}", file=sys.stderr)
            return EXIT_OK
        if args.job_command == "retry":
            return retry(client, args)
        client.delete_job(args.job)
        print(f"deleted {args.job} (its output files are kept)", file=sys.stderr)
        return EXIT_OK

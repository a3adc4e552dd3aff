"""What every command prints and writes: exit codes, tables, the progress line, files, failures."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc

from ..client_errors import field_violations
from ..engine.errors import RequestError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

# What gRPC says when no connection is made or it breaks; a server that answers UNAVAILABLE itself
# (a model unloaded, shutting down) gave a reason of its own, which is printed as it is.
TRANSPORT_PHRASES = ("failed to connect", "connection refused", "handshake", "dns resolution",
                     "socket closed", "connections to all backends", "connection reset", "broken pipe",
                     "endpoint closing", "cancelling all calls", "no connection", "unavailable to connect")


class ConnectionLost(Exception):
    """The server went away in the middle of a stream that had been answering: not a server that
    never answered, nor a TLS mistake, which is what the same gRPC message means before a call starts."""


def transport_failure(details: str) -> bool:
    """Whether a failed call's details say the connection failed or broke (not the server's own reason)."""
    lowered = details.lower()
    return any(phrase in lowered for phrase in TRANSPORT_PHRASES)


def broke_off(error: Any) -> bool:
    """Whether a stream's grpc.RpcError says its connection went (a server killed mid-stream:
    "Stream removed (Socket closed)"), rather than giving the server's own reason."""
    details = error.details() or ""
    return error.code().name in ("UNAVAILABLE", "UNKNOWN") and (
        transport_failure(details) or "stream removed" in details.lower())


def fail(message: str, code: int = EXIT_FAILED, violations: Iterable[tuple[str, str]] = ()) -> int:
    """Say on stderr why a command failed, and which fields, the same for every command; its exit code."""
    print(f"museforge: {message}", file=sys.stderr)
    for field, description in violations:
        print(f"  {field}: {description}", file=sys.stderr)
    return code


def print_table(rows: Iterable[Sequence[str]], header: Sequence[str]) -> None:
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    for line in [list(header), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


class Bar:
    """A dependency-free progress line on stderr (only when stderr is a terminal)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = 0  # the width of the line drawn, 0 when there is none

    def update(self, done: int, total: int, stage: str) -> None:
        if not self.enabled or total <= 0:
            return
        filled = int(30 * done / total)
        line = f"{stage:<10} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
        sys.stderr.write(f"\r{line}{' ' * max(self.shown - len(line), 0)}")
        sys.stderr.flush()
        self.shown = len(line)

    def clear(self) -> None:
        """Blank the line, so that what is printed next starts a line (the next update redraws it)."""
        if self.shown:
            sys.stderr.write(f"\r{' ' * self.shown}\r")
            sys.stderr.flush()
            self.shown = 0

    def close(self) -> None:
        """End the line drawn, if any."""
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = 0


def write_file(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` whole or not at all (through a temporary file beside it); a failure names the
    file asked for, not the temporary one."""
    path = directory / Path(name).name  # never let a name escape the output directory
    tmp = path.with_suffix(path.suffix + ".part")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    return path


def to_stdout(output: Path) -> bool:
    """-o -: the one result goes to stdout, as shell tools do."""
    return str(output) == "-"


def stdout_refusal(args: Any, results: int) -> str:
    """Why -o - cannot take what the flags ask for ('' when it can): one file, to a pipe or a file."""
    if getattr(args, "json", False):
        return ("-o - writes the result itself to stdout, and --json a listing of files there: give one of "
                "them")
    if results > 1:
        return (f"-o - writes one result to stdout, and this makes {results}: give a folder, or a file name "
                "to have them numbered beside it")
    if sys.stdout.isatty():
        return ("-o - would write the file's bytes to the terminal: send stdout to a pipe or a file, or give "
                "-o FILE")
    return ""


def write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def refusal_of(run: Callable[[], object]) -> str:
    """What a request refused for its input said ('' when it ran): an invalid request, here or on
    the server. A refusal of the call itself (parameters.*, format, seed: the same for every file)
    and anything else (no server, a broken connection) are not the file's and go on up."""
    try:
        run()
    except RequestError as exc:
        if not inputs_only(v.field for v in exc.violations):
            raise
        return "; ".join(f"{v.field}: {v.description}" for v in exc.violations) or exc.message
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        violations = field_violations(exc)
        if not inputs_only(field for field, _ in violations):
            raise
        return "; ".join(f"{field}: {said}" for field, said in violations) or (exc.details() or "")
    return ""


def inputs_only(fields: Iterable[str]) -> bool:
    """Whether every field refused is an input's (inputs[0], inputs[0].width), i.e. the file's fault."""
    return all(field.startswith("inputs[") for field in fields)


def report_written(args: Any, written: list[Path], seed: int | None) -> None:
    """The files written, a line each, or with --json one object a script can read."""
    if getattr(args, "json", False):
        print(json.dumps({"files": [str(path) for path in written], "seed": seed}))
    else:
        for path in written:
            print(path)

"""Request errors: a ``google.rpc`` status code, a message and the fields at fault.

The engine raises them without knowing about gRPC; the server turns them into gRPC
statuses (``museforge.server.status``) and the gateway into HTTP answers.

Whatever a caller sent may end up in a message (an unknown parameter's name, a generator
name), so every status is clipped to a size any client accepts: a client refuses trailers
over 8 KiB as RESOURCE_EXHAUSTED, which callers retry forever. Messages of server-side
failures keep server paths out (plugin exceptions and model errors name files).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

MAX_MESSAGE_BYTES = 1024  # grpc-message and the Status message each carry it
MAX_VIOLATIONS = 16
MAX_FIELD_BYTES = 128
MAX_DESCRIPTION_BYTES = 256


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, marked with an ellipsis when cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[: max(0, limit - 3)].decode("utf-8", "ignore") + "…"


@lru_cache(maxsize=1)
def _server_paths() -> re.Pattern[str]:
    package = Path(__file__).resolve().parent
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(package.parent), tempfile.gettempdir(),
             str(Path.home()), os.getcwd()}
    ordered = sorted((r.rstrip("/") for r in roots if len(r) > 1), key=len, reverse=True)
    alternatives = "|".join(re.escape(r) for r in ordered)
    return re.compile(rf"(?<![\w.-])(?:{alternatives})(?:/[^\s'\"<>,;:)\]]*|(?![\w.-]))")


def without_server_paths(text: str) -> str:
    """``text`` with files under the server's directories named by their file name alone."""
    return _server_paths().sub(lambda m: os.path.basename(m.group(0).rstrip("/")) or "…", text)


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


def new_correlation() -> str:
    """An id for one server-side failure, in its log records and in the caller's message."""
    return uuid.uuid4().hex[:12]


class RequestError(Exception):
    """A request the server will not run; carries its ``google.rpc.Code`` and field violations."""

    code: int = code_pb2.INVALID_ARGUMENT
    server_side = False  # a server-side failure: its message may name server files
    # The id under which the server logged this failure's traceback ("" until one was): the
    # service answers with it rather than a new one, so the id a caller quotes finds the traceback.
    correlation: str = ""

    def __init__(self, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)

    def _text(self, text: str, limit: int) -> str:
        if self.server_side:
            text = without_server_paths(clip(text, 4 * limit))  # the cut first: no regex over megabytes
        return clip(text, limit)

    def _status(self) -> status_pb2.Status:
        return status_pb2.Status(code=self.code, message=self._text(self._said(), MAX_MESSAGE_BYTES))

    def _said(self) -> str:
        """The message, naming the fields at fault when it does not already: a client that reads
        only the status text (grpcurl, a C++ or C# client without google.rpc's protos) learns
        which fields; why is in the BadRequest detail."""
        fields = [v.field for v in self.violations if v.field]
        if not fields or any(field in self.message for field in fields):
            return self.message
        named = ", ".join(fields[:3]) + (f" and {len(fields) - 3} more" if len(fields) > 3 else "")
        return f"{self.message} ({named})"

    def status(self) -> status_pb2.Status:
        """The ``google.rpc.Status`` a caller gets: code, clipped message, details."""
        status = self._status()
        if self.violations:
            shown = [
                error_details_pb2.BadRequest.FieldViolation(
                    field=self._text(v.field, MAX_FIELD_BYTES),
                    description=self._text(v.description, MAX_DESCRIPTION_BYTES),
                )
                for v in self.violations[:MAX_VIOLATIONS]
            ]
            if len(self.violations) > MAX_VIOLATIONS:
                hidden = len(self.violations) - MAX_VIOLATIONS + 1
                shown[-1] = error_details_pb2.BadRequest.FieldViolation(
                    field="…", description=f"{hidden} more problems not shown")
            detail = any_pb2.Any()
            detail.Pack(error_details_pb2.BadRequest(field_violations=shown))
            status.details.append(detail)
        return status

    def detached(self) -> RequestError:
        """This error without its traceback and the exceptions it was raised from.

        A traceback holds the frames it passed through, and their locals the request: kept
        on a stored error, a failed call's payload stays in memory until the cycle
        collector happens to run. The message and violations say all the caller needs.
        """
        seen: set[int] = set()
        error: BaseException | None = self
        while error is not None and id(error) not in seen:
            seen.add(id(error))
            if error.__traceback__ is not None:
                traceback.clear_frames(error.__traceback__)
            error.__traceback__ = None
            error = error.__cause__ or error.__context__
        self.__cause__ = self.__context__ = None
        return self


class InvalidArgument(RequestError):
    code = code_pb2.INVALID_ARGUMENT


class NotFound(RequestError):
    code = code_pb2.NOT_FOUND


class Unavailable(RequestError):
    code = code_pb2.UNAVAILABLE
    server_side = True


class Internal(RequestError):
    code = code_pb2.INTERNAL
    server_side = True


class DeadlineExceeded(RequestError):
    code = code_pb2.DEADLINE_EXCEEDED


class ResourceExhausted(RequestError):
    """Overload: the status carries a google.rpc.RetryInfo with ``retry_after`` seconds."""

    code = code_pb2.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float = 0.1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def status(self) -> status_pb2.Status:
        status = self._status()
        detail = any_pb2.Any()
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, int(self.retry_after * 1e9)))
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status.details.append(detail)
        return status


class PermissionDenied(RequestError):
    code = code_pb2.PERMISSION_DENIED


class FailedPrecondition(RequestError):
    code = code_pb2.FAILED_PRECONDITION


class AlreadyExists(RequestError):
    code = code_pb2.ALREADY_EXISTS


REQUEST_FIELDS = ("count", "seed", "format", "inputs", "parameters")


def request_field(name: str) -> str:
    """A field a plugin names (in ``check``, ``estimate`` or ``LimitExceeded``) as the request's path:
    ``size`` is ``parameters.size``; ``count``, ``inputs[0]`` and ``parameters.size`` stay."""
    head = name.split(".", 1)[0].split("[", 1)[0]
    return name if head in REQUEST_FIELDS else f"parameters.{name}"

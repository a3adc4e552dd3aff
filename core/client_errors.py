"""The Python client's errors: a failed call raised as an exception named for its status code.

Each error wraps the failed gRPC call and answers like it (``code()``, ``details()``, the
metadata), so code written for ``grpc.RpcError`` (``except grpc.RpcError``, ``exc.code()``,
``rpc_status.from_call(exc)``) keeps working. These are not the engine's errors
(``museforge.engine.errors``): those are what the server raises before it answers.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, ParamSpec, TypeVar, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

P = ParamSpec("P")
R = TypeVar("R")
ClassT = TypeVar("ClassT", bound=type)

# The server appends this to the message of a failure on its side (and logs it with the cause).
CORRELATION = re.compile(r"\(correlation id ([0-9a-f]+)\)")


def _status_details(error: grpc.RpcError) -> list[any_pb2.Any]:
    """The ``google.rpc.Status`` details a failed call carried (none when they disagree with it)."""
    try:
        status = rpc_status.from_call(cast(grpc.Call, error))
    except ValueError:  # a status whose code or message is not the call's: not this call's details
        return []
    return list(status.details) if status else []


def _retry_after_in(details: list[any_pb2.Any]) -> float | None:
    for detail in details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


def _violations_in(details: list[any_pb2.Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for detail in details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def retry_after(error: grpc.RpcError) -> float | None:
    """The RetryInfo delay a failed call carried, in seconds (None when it has none)."""
    return _retry_after_in(_status_details(error))


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs a failed call carried, for clients and tests."""
    return _violations_in(_status_details(error))


class MuseforgeError(grpc.RpcError, grpc.Call):
    """A call that failed; also what a status code without a class of its own raises.

    ``message`` is the server's message, ``violations`` the (field, description) pairs at
    fault, ``retry_after`` the seconds to wait before trying again (or None), and
    ``correlation_id`` the id of a server-side failure in the server's log (or None).
    """

    status_code: ClassVar[grpc.StatusCode | None] = None  # the code a subclass stands for

    def __init__(self, call: grpc.RpcError) -> None:
        self.call = call  # the failed call: a grpc.Call, and for a stream its iterator too
        self.message = call.details() or ""
        super().__init__(self.message)
        details = _status_details(call)  # parsed once for both
        self.violations: tuple[tuple[str, str], ...] = tuple(_violations_in(details))
        self.retry_after = _retry_after_in(details)
        found = CORRELATION.search(self.message)
        self.correlation_id = found.group(1) if found else None

    def __str__(self) -> str:
        text = f"{self.code().name}: {self.message}"
        shown = "; ".join(f"{field}: {description}" for field, description in self.violations)
        return f"{text} ({shown})" if shown else text

    # -- grpc.Call: the failed call's answers --------------------------------------------------

    def code(self) -> grpc.StatusCode:
        return self.call.code()

    def details(self) -> str:
        return self.call.details() or ""

    def initial_metadata(self) -> Any:
        return cast(grpc.Call, self.call).initial_metadata()

    def trailing_metadata(self) -> Any:
        return self.call.trailing_metadata()

    def debug_error_string(self) -> str | None:
        method = getattr(self.call, "debug_error_string", None)
        return method() if callable(method) else None

    # The call has ended (it failed): nothing is active, left to cancel or to call back.

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:  # type: ignore[override]  # grpc's own answer; the stubs lack None
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


class InvalidArgument(MuseforgeError):
    """The request is wrong; ``violations`` names each field at fault."""

    status_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(MuseforgeError):
    """No such generator, effect, model or job."""

    status_code = grpc.StatusCode.NOT_FOUND


class PermissionDenied(MuseforgeError):
    """The API key lacks the scope, or a job names a path outside the allowed roots."""

    status_code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(MuseforgeError):
    """No API key, or one the server does not know."""

    status_code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(MuseforgeError):
    """Overload (a per-key limit, a full model queue): try again after ``retry_after`` seconds."""

    status_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(MuseforgeError):
    """No server answered, or the generator's model failed to load."""

    status_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(MuseforgeError):
    """The client's timeout, or a generator past its time limit (then with a correlation id)."""

    status_code = grpc.StatusCode.DEADLINE_EXCEEDED


class FailedPrecondition(MuseforgeError):
    """The call does not fit the state of what it names (e.g. deleting a job that still runs)."""

    status_code = grpc.StatusCode.FAILED_PRECONDITION


class Cancelled(MuseforgeError):
    """The call was cancelled before it finished."""

    status_code = grpc.StatusCode.CANCELLED


class Unimplemented(MuseforgeError):
    """The server does not serve this call (an older server, or a service turned off)."""

    status_code = grpc.StatusCode.UNIMPLEMENTED


class Internal(MuseforgeError):
    """A failure on the server's side; ``correlation_id`` finds it in the server's log."""

    status_code = grpc.StatusCode.INTERNAL


class _LocalCall(grpc.RpcError):
    """A failure the client finds itself (no call was made), answering as a failed call does."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self._code, self._message = code, message

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def initial_metadata(self) -> tuple[()]:
        return ()

    def trailing_metadata(self) -> tuple[()]:
        return ()


def local_failure(code: grpc.StatusCode, message: str) -> MuseforgeError:
    """The typed error of ``code`` for a failure found without a call."""
    return KINDS.get(code, MuseforgeError)(_LocalCall(code, message))


KINDS: dict[grpc.StatusCode, type[MuseforgeError]] = {
    kind.status_code: kind
    for kind in (InvalidArgument, NotFound, PermissionDenied, Unauthenticated, ResourceExhausted,
                 Unavailable, DeadlineExceeded, FailedPrecondition, Cancelled, Unimplemented, Internal)
    if kind.status_code is not None
}


def typed(error: grpc.RpcError) -> grpc.RpcError:
    """``error`` as the MuseforgeError of its status code (as it is when typed already or codeless)."""
    if isinstance(error, MuseforgeError) or not callable(getattr(error, "code", None)):
        return error
    return KINDS.get(error.code(), MuseforgeError)(error)


def raising_typed(method: Callable[P, R]) -> Callable[P, R]:
    """``method`` with its grpc errors typed, also those of a stream it yields from."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def streaming(*args: P.args, **kwargs: P.kwargs) -> Iterator[Any]:
            try:
                yield from cast(Iterator[Any], method(*args, **kwargs))
            except grpc.RpcError as error:
                raise typed(error) from None

        return cast(Callable[P, R], streaming)

    @functools.wraps(method)
    def unary(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except grpc.RpcError as error:
            raise typed(error) from None

    return unary


def typed_errors(cls: ClassT) -> ClassT:
    """``cls`` with every public method raising typed errors: one rule, so no call can miss it."""
    for name, value in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(value):
            setattr(cls, name, raising_typed(value))
    return cls

"""Request errors that map onto gRPC status codes with ``google.rpc`` details."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class RequestError(Exception):
    """A request the server will not run; carries its gRPC code and field violations."""

    code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)

    def to_status(self) -> grpc.Status:
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        if self.violations:
            detail = any_pb2.Any()
            detail.Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in self.violations
                    ]
                )
            )
            status.details.append(detail)
        return rpc_status.to_status(status)


class InvalidArgument(RequestError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(RequestError):
    code = grpc.StatusCode.NOT_FOUND


class Unavailable(RequestError):
    code = grpc.StatusCode.UNAVAILABLE


class Internal(RequestError):
    code = grpc.StatusCode.INTERNAL


class DeadlineExceeded(RequestError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ResourceExhausted(RequestError):
    """Overload: the status carries a google.rpc.RetryInfo with ``retry_after`` seconds."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float = 0.1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def to_status(self) -> grpc.Status:
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        detail = any_pb2.Any()
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, int(self.retry_after * 1e9)))
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status.details.append(detail)
        return rpc_status.to_status(status)


def retry_after(error: grpc.RpcError) -> float | None:
    """The RetryInfo delay a failed call carried, in seconds (None when it has none)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


class PermissionDenied(RequestError):
    code = grpc.StatusCode.PERMISSION_DENIED


class FailedPrecondition(RequestError):
    code = grpc.StatusCode.FAILED_PRECONDITION


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs a failed call carried, for clients and tests."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: list[tuple[str, str]] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


assert grpc.StatusCode.INVALID_ARGUMENT.value[0] == code_pb2.INVALID_ARGUMENT

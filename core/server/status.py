"""Request errors as gRPC statuses: the one place an engine error becomes a gRPC answer."""

from __future__ import annotations

import grpc
from grpc_status import rpc_status

from ..engine.errors import RequestError

_CODES = {code.value[0]: code for code in grpc.StatusCode}


def grpc_code(error: RequestError) -> grpc.StatusCode:
    """The gRPC status code of ``error`` (gRPC and ``google.rpc.Code`` share their numbers)."""
    return _CODES[error.code]


def to_status(error: RequestError) -> grpc.Status:
    """The gRPC status a caller gets for ``error``, with its ``google.rpc`` details."""
    return rpc_status.to_status(error.status())

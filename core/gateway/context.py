"""The ServicerContext an HTTP request's in-process call runs with: what grpc's own gives a method.

Metadata comes from the forwarded headers, the deadline from a ``grpc-timeout`` header,
the peer from the connection (with its client certificate under mutual TLS). ``abort``
raises as grpc's does, the status staying on the context, where the interceptors and
the gateway read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

Metadata = tuple[tuple[str, Any], ...]
Writer = Callable[[Message], Awaitable[None]]


class Aborted(grpc.aio.AbortError):
    """Raised by ``abort``: the status the method ended its call with."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Metadata) -> None:
        super().__init__("Locally aborted.")
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


def peer_name(client: tuple[str, int] | None) -> str:
    """grpc's form of a peer address: ``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``."""
    if not client:
        return "unknown"
    host, port = client[0], client[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


def certificate_identities(cert: Mapping[str, Any] | None) -> dict[str, list[bytes]]:
    """The auth context grpc gives for a TLS peer (a client certificate, when there is one)."""
    if cert is None:
        return {}
    context: dict[str, list[bytes]] = {"transport_security_type": [b"ssl"],
                                       "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"]}
    names = [value for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "URI", "IP Address")]
    common = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    if names:
        context["x509_subject_alternative_name"] = [n.encode() for n in names]
    if common:
        context["x509_common_name"] = [c.encode() for c in common]
    return context


class CallContext(grpc.aio.ServicerContext[Any, Any]):
    """One in-process call's context."""

    def __init__(self, metadata: Metadata, peer: str, deadline: float | None = None,
                 cert: Mapping[str, Any] | None = None, writer: Writer | None = None) -> None:
        self.metadata = metadata
        self._peer = peer
        self.deadline = deadline  # the event loop's clock
        self.cert = cert
        self.writer = writer
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None
        self._trailing: Metadata = ()
        self._callbacks: list[Callable[[Any], None]] = []
        self._cancelled = self._done = self.expired = False

    # -- status ---------------------------------------------------------------------------
    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> NoReturn:
        if code == grpc.StatusCode.OK:
            raise ValueError("abort needs a non-OK status code")
        self._code = code
        self._details = details or self._details or ""
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        raise Aborted(code, self._details, self._trailing)

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        await self.abort(status.code, status.details, status.trailing_metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode | None:  # type: ignore[override]
        return self._code

    def details(self) -> str:
        return self._details or ""

    def set_trailing_metadata(self, trailing_metadata: Any) -> None:
        self._trailing = tuple(trailing_metadata)

    def trailing_metadata(self) -> Any:
        return self._trailing

    # -- messages -------------------------------------------------------------------------
    async def read(self) -> NoReturn:
        raise RuntimeError("the gateway's calls have a single request: read() is not available")

    async def write(self, message: Message) -> None:
        if self.writer is None:
            raise RuntimeError("write() is for server-streaming methods")
        await self.writer(message)

    async def send_initial_metadata(self, initial_metadata: Any) -> None:
        return None  # HTTP replies carry no gRPC metadata

    def set_compression(self, compression: grpc.Compression) -> None:
        return None

    def disable_next_message_compression(self) -> None:
        return None

    # -- the caller -----------------------------------------------------------------------
    def invocation_metadata(self) -> Any:
        return self.metadata

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> dict[str, list[bytes]]:
        return certificate_identities(self.cert)

    def peer_identity_key(self) -> str | None:
        context = self.auth_context()
        for key in ("x509_subject_alternative_name", "x509_common_name"):
            if key in context:
                return key
        return None

    def peer_identities(self) -> Iterable[bytes] | None:
        key = self.peer_identity_key()
        return self.auth_context()[key] if key else None

    def time_remaining(self) -> float | None:  # type: ignore[override]
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    # -- life -----------------------------------------------------------------------------
    def cancel(self, expired: bool = False) -> None:
        """The client went away (or the deadline passed): the call is cancelled."""
        self._cancelled = True
        self.expired = self.expired or expired

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def finish(self) -> None:
        """The method has returned (or raised): run the done callbacks, once."""
        if self._done:
            return
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

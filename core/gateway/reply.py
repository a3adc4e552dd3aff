"""The gateway's replies: JSON and NDJSON out, errors in Google's REST form, CORS headers.

JSON is written by orjson (a tensor's numbers in a fraction of the time the standard library
takes); the conversion of large messages runs in the gateway's threads, since the event
loop also serves the gRPC calls and a frame's base64 takes milliseconds.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import numpy as np
import orjson
from google.protobuf.message import Message

from .calls import CallError
from .context import CallContext
from .json_codec import rpc_error_body, to_json
from .routes import HEALTH, Route

if TYPE_CHECKING:
    from .http_protocol import Exchange
    from .server import Gateway

T = TypeVar("T")
FORWARDED_HEADERS = ("authorization", "traceparent", "tracestate", "x-request-id")
# inference-header-content-length: Triton's binary tensor extension, which a page may use
# only once its preflight passed (the header is not CORS-safelisted).
ALLOWED_HEADERS = ", ".join(("content-type", "grpc-timeout", "inference-header-content-length",
                             *FORWARDED_HEADERS)).encode()
# What a page on a listed origin may read of a reply: when to retry, what a 405 allows, the
# scheme a 401 asks for, and its own X-Request-Id, given back to match a failure to the log.
EXPOSED_HEADERS = b"Retry-After, Allow, WWW-Authenticate, X-Request-Id, Inference-Header-Content-Length"
OFFLOAD_BYTES = 256 * 1024  # JSON work on more than this runs in the gateway's threads
MAX_HEAD_BYTES = 64 * 1024  # a request's line and headers (431 beyond); see http_protocol
Headers = list[tuple[bytes, bytes]]


class Replies:
    """A request's state as the reply needs it, and the ways to reply."""

    def __init__(self, gateway: Gateway, exchange: Exchange) -> None:
        self.gateway = gateway
        self.exchange = exchange
        self.scope: Any = exchange.scope
        scope = self.scope
        self.verb: str = scope["method"]
        self.path: str = scope["raw_path"].decode("latin-1")  # percent-encoded: variables are unquoted once
        self.query: str = scope["query_string"].decode("latin-1")
        self.headers: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            self.headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        self.close = False  # close the connection after the reply
        self.length = 0
        self.body_done = False
        self.held = 0  # body bytes charged to the budget
        self.context: CallContext | None = None
        self.stopped = ""  # "gone" (the client left) or "deadline" (grpc-timeout passed)
        # The /v2 infer reply with binary outputs: (body, its JSON's length or None for plain JSON).
        self.binary: Callable[[Message], tuple[bytes, int | None]] | None = None

    def header(self, name: str, default: str = "") -> str:
        values = self.headers.get(name)
        return values[0] if values else default

    async def offload(self, size: int, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)``, in the gateway's threads when it works on much data (the event
        loop also serves the gRPC calls)."""
        if size < OFFLOAD_BYTES:
            return function(*args)
        return await asyncio.get_running_loop().run_in_executor(self.gateway.executor, function, *args)

    async def reply_unary(self, route: Route, request: Message, context: CallContext) -> None:
        try:
            reply = await self.gateway.calls.unary(route.method, request, context)
        except CallError as error:
            await self.send_rpc_error(explained(route, request, error))
            return
        if self.binary is not None:
            await self.send_binary(*await self.offload(reply.ByteSize(), self.binary, reply))
            return
        render = route.render
        status, data = await self.offload(reply.ByteSize(), encode_reply, render, reply)
        await self.send(status, self.json_headers(len(data)), data)

    async def send_binary(self, data: bytes, header_length: int | None) -> None:
        """Triton's binary tensor reply: JSON, then the tensors' bytes (plain JSON if none follow)."""
        if header_length is None:
            await self.send(200, self.json_headers(len(data)), data)
            return
        headers = self.reply_headers(b"application/octet-stream", len(data),
                                     [(b"Inference-Header-Content-Length", b"%d" % header_length)])
        if self.close:
            headers.append((b"Connection", b"close"))
        await self.send(200, headers, data)

    async def reply_stream(self, route: Route, request: Message, context: CallContext) -> None:
        """NDJSON: the first message decides the status (a call refused at once gets a real error)."""
        started = False

        async def emit(message: Message) -> None:
            nonlocal started
            self.gateway.calls.check_size(message)
            line = await self.offload(message.ByteSize(), ndjson_line, message)
            if not started:
                started = True
                await self.start_stream()
            await self.exchange.send({"type": "http.response.body", "body": line, "more_body": True})

        context.writer = emit
        replies = self.gateway.calls.stream(route.method, request, context)
        try:
            async for message in replies:
                await emit(message)
        except CallError as error:
            if not started:
                await self.send_rpc_error(error)
                return
            _, body, _ = rpc_error_body(error)
            await self.exchange.send({"type": "http.response.body", "body": dumps(body) + b"\n",
                                      "more_body": True})
        finally:
            await replies.aclose()
        if not started:
            await self.start_stream()
        await self.exchange.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def start_stream(self) -> None:
        await self.exchange.send({"type": "http.response.start", "status": 200,
                                  "headers": self.reply_headers(b"application/x-ndjson", None)})

    async def preflight(self) -> None:
        """The CORS preflight of browser tools, answered only for the configured origins."""
        headers = self.reply_headers(None, 0, [(b"Access-Control-Allow-Methods", b"GET, POST, DELETE"),
                                               (b"Access-Control-Allow-Headers", ALLOWED_HEADERS),
                                               (b"Access-Control-Max-Age", b"600")])
        if not self.body_done:
            self.close = True
            headers.append((b"Connection", b"close"))
        await self.send(204 if self.cors_origin() else 403, headers, b"")

    async def send_rpc_error(self, error: grpc.RpcError) -> None:
        status, body, retry_after = rpc_error_body(error)
        extra = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else {}
        await self.send_json(status, body, extra)

    async def send_json(self, status: int, document: Any, extra: dict[str, str] | None = None) -> None:
        if self.path.startswith("/v2") and isinstance(document.get("error"), dict):
            document = {"error": document["error"]["message"]}  # the OIP's REST form
        data = dumps(document)
        headers = self.json_headers(len(data), [(k.encode(), v.encode()) for k, v in (extra or {}).items()])
        await self.send(status, headers, data)

    def json_headers(self, length: int, extra: Sequence[tuple[bytes, bytes]] = ()) -> Headers:
        headers = self.reply_headers(b"application/json", length, extra)
        if self.close:
            headers.append((b"Connection", b"close"))
        return headers

    def reply_headers(self, content_type: bytes | None, length: int | None,
                      extra: Sequence[tuple[bytes, bytes]] = ()) -> Headers:
        headers = [] if content_type is None else [(b"Content-Type", content_type)]
        if length is not None:
            headers.append((b"Content-Length", b"%d" % length))
        origin = self.cors_origin()
        if origin:
            headers += [(b"Access-Control-Allow-Origin", origin.encode("latin-1")),
                        (b"Access-Control-Expose-Headers", EXPOSED_HEADERS), (b"Vary", b"Origin")]
        request_id = self.request_id()
        if request_id:
            headers.append((b"X-Request-Id", request_id.encode()))
        headers.extend(extra)
        return headers

    def request_id(self) -> str:
        return echoed_request_id(self.header("x-request-id"))

    async def send(self, status: int, headers: Headers, data: bytes) -> None:
        await self.exchange.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.exchange.send({"type": "http.response.body", "body": data, "more_body": False})

    def cors_origin(self) -> str:
        origin = self.header("origin")
        allowed = self.gateway.cors_origins
        return origin if origin and ("*" in allowed or origin in allowed) else ""


def echoed_request_id(value: str) -> str:
    """``value`` if a reply may carry it back as X-Request-Id, else "": printable ASCII (what a
    header can hold unchanged), and no longer than a head the gateway serves, so a 431 for an
    oversize head never echoes more than a served request could."""
    return value if len(value) <= MAX_HEAD_BYTES and value.isascii() and value.isprintable() else ""


def explained(route: Route, request: Message, error: CallError) -> CallError:
    """grpc's health service answers an unknown service with a bare NOT_FOUND: say which, and
    what there is to ask for, as ``museforge health`` does."""
    if route.method != HEALTH + "Check" or error.code() != grpc.StatusCode.NOT_FOUND or error.details():
        return error
    service = getattr(request, "service", "")
    return CallError(error.code(), f"the server has no health service {service[:200]!r} (try "
                     "museforge.plugin/NAME, museforge.model/NAME, a gRPC service such as "
                     "museforge.v1.Museforge, or no service for the server)", error.trailing_metadata())


def encode_reply(render: Callable[[Message], tuple[int, dict[str, Any]]] | None,
                 reply: Message) -> tuple[int, bytes]:
    status, document = render(reply) if render is not None else (200, to_json(reply))
    return status, dumps(document)


def ndjson_line(message: Message) -> bytes:
    return dumps({"result": to_json(message)}) + b"\n"


def dumps(document: Any) -> bytes:
    """JSON bytes; tensors (numpy arrays) as arrays of numbers (non-finite floats as null: a
    tensor that may hold them is written beforehand, see ``oip_routes.output_data``)."""
    try:
        return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # an array orjson cannot take as it is (byte order, type): as a list
        return orjson.dumps(document, default=_as_list)


def _as_list(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [v if not isinstance(v, float) or math.isfinite(v) else None for v in value.tolist()]
    raise TypeError(f"{type(value).__name__} is not JSON")


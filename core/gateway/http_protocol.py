"""The gateway's HTTP/1.1 connections: uvicorn's httptools protocol (llhttp), held to deadlines.

A slow or hostile client must not hold the server, so on every connection:

- its request line and headers (and, between kept-alive requests, the idle time before
  them) must arrive within ``IDLE_SECONDS``: one timer from the connection's start or the
  previous response's end until the headers are complete, not reset by each byte, so
  trickling a header a byte at a time (slowloris) does not keep a connection;
- a body must arrive within ``BODY_SECONDS`` plus a second per MiB, on every route;
- the request line and headers may hold ``MAX_HEAD_BYTES``;
- a reply the client does not read for ``IDLE_SECONDS`` ends the connection;
- past ``http_max_connections`` connections, a request is answered 503 with Retry-After
  and its connection closed (and past twice as many, connections are closed at once).

llhttp parses strictly: two Content-Lengths, Content-Length with Transfer-Encoding,
whitespace before a header's colon, bare LF line ends and folded headers are refused with
a 400 naming what is wrong. Replies keep the case of their header names, and HTTP/1.0
clients get streamed replies unframed, the connection closing after the last byte.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httptools
from uvicorn.protocols.http.httptools_impl import (
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from .json_codec import HttpError
from .reply import MAX_HEAD_BYTES, dumps, echoed_request_id

log = logging.getLogger("museforge.gateway")

IDLE_SECONDS = 30.0  # to send a request's line and headers (and between kept-alive requests)
DRAIN_CHECK_SECONDS = 2.0  # how often a reply that waits for its client looks whether it reads
BODY_SECONDS = 30.0  # to send a body, plus one second per MiB
LINGER_SECONDS = 5.0  # reading and dropping a refused body, so its sender gets to read the answer
LINGER_QUIET_SECONDS = 0.5  # ... ended sooner when nothing more comes for this long
MIB = 1 << 20
# Status lines with RFC 9110's reason phrases whatever the Python version (3.11's http.HTTPStatus
# still says 413 "Request Entity Too Large"); 499, gRPC's CANCELLED, has nginx's phrase.
STATUS_LINES = {**STATUS_LINE, 413: b"HTTP/1.1 413 Content Too Large\r\n",
                499: b"HTTP/1.1 499 Client Closed Request\r\n"}


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int


def error_reply(error: HttpError, oip: bool, request_id: str = "") -> bytes:
    """A whole JSON error reply that closes the connection (for a request the parser refused)."""
    body = error.body()
    document = {"error": body["error"]["message"]} if oip else body
    data = dumps(document)
    head = [STATUS_LINES[error.http_status], b"Content-Type: application/json\r\n",
            b"Content-Length: %d\r\n" % len(data), b"Connection: close\r\n"]
    if request_id:
        head.append(b"X-Request-Id: %b\r\n" % request_id.encode())
    return b"".join(head) + b"\r\n" + data


def parser_error(reason: str) -> HttpError:
    """The 400 for a request llhttp refused, naming the header when the reason does."""
    field = next((name for name in ("Content-Length", "Transfer-Encoding") if name in reason),
                 "headers" if "header" in reason.lower() else "request")
    return HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, f"malformed HTTP request: {reason}", field)


class Refused(Exception):
    """Raised in a parser callback to stop parsing and answer ``error``."""

    def __init__(self, error: HttpError) -> None:
        super().__init__(error.message)
        self.error = error


def head_too_large() -> HttpError:
    return HttpError(431, grpc.StatusCode.INVALID_ARGUMENT,
                     f"the request line and headers are over {MAX_HEAD_BYTES} bytes", "headers")


class Exchange(RequestResponseCycle):
    """One request and its reply; the app is called with the exchange itself."""

    on_gone: Callable[[], None] | None = None  # set by the app: the client left, stop its call
    body_seconds = 0.0  # the body's deadline, armed when the exchange starts
    framing = b""  # b"length", b"chunked" or b"close" (HTTP/1.0: until the connection ends)
    pending = b""  # status line and headers, sent with the first part of the body
    on_close: Callable[[], None] | None = None  # how the connection ends after a closing reply

    async def run_asgi(self, app: Any) -> None:
        try:
            await app(self)
        except asyncio.CancelledError:  # the server is stopping: hang up
            self.transport.close()
            raise
        except BaseException as exc:
            log.error("gateway: unhandled failure on %s", self.scope.get("path"), exc_info=exc)
            self.transport.close()
        finally:
            self.on_response = lambda: None

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected and not await self.drained():
            self.transport.abort()  # a client that reads nothing must not hold the call (nor its memory)
            self.disconnected = True
        if self.disconnected:
            return
        if not self.response_started:
            self.start(message["status"], message.get("headers", ()))
        elif not self.response_complete:
            self.write(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError("the reply was already complete")

    async def drained(self) -> bool:
        """Wait while the client reads what was sent; False once it took no byte for IDLE_SECONDS. A
        slow reader that keeps reading (a big stream over a thin line) is not cut off."""
        loop = asyncio.get_running_loop()
        left, moved = self.transport.get_write_buffer_size(), loop.time()
        while self.flow.write_paused and not self.disconnected:
            try:
                await asyncio.wait_for(self.flow.drain(), DRAIN_CHECK_SECONDS)
            except asyncio.TimeoutError:
                now = self.transport.get_write_buffer_size()
                if now < left:
                    left, moved = now, loop.time()
                elif loop.time() - moved >= IDLE_SECONDS:
                    return False
        return True

    def start(self, status: int, headers: Any) -> None:
        self.response_started = True
        self.waiting_for_100_continue = False
        lines = [STATUS_LINES[status]]
        lines += [name + b": " + value + b"\r\n" for name, value in self.default_headers]
        self.framing, closing = b"", False
        for name, value in headers:
            if HEADER_VALUE_RE.search(value):
                raise RuntimeError(f"invalid value for the {name!r} header")
            lower = name.lower()
            if lower == b"content-length":
                self.framing, self.expected_content_length = b"length", int(value)
            elif lower == b"connection" and b"close" in value.lower():
                self.keep_alive, closing = False, True
            lines.append(name + b": " + value + b"\r\n")
        if not self.framing:
            if self.scope["method"] == "HEAD" or status in (204, 304):
                self.framing = b"length"
            elif self.scope["http_version"] == "1.0":
                self.framing, self.keep_alive = b"close", False
            else:
                self.framing = b"chunked"
                lines.append(b"Transfer-Encoding: chunked\r\n")
        if not self.keep_alive and not closing:
            lines.append(b"Connection: close\r\n")
        self.pending = b"".join(lines) + b"\r\n"

    def write(self, body: bytes, more: bool) -> None:
        if self.scope["method"] == "HEAD":
            body = b""
        elif self.framing == b"chunked":
            body = (b"%x\r\n%b\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n")
        elif self.framing == b"length":
            self.expected_content_length -= len(body)
        self.transport.write(self.pending + body if self.pending else body)
        self.pending = b""
        if not more:
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.on_close() if self.on_close is not None else self.transport.close()
            self.on_response()


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with the deadlines and limits above."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 limits: ConnectionLimits, _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.access_log = False
        self.logger = log
        self.timer: asyncio.TimerHandle | None = None
        self.in_head = True  # waiting for a request's line and headers
        self.head_bytes = 0
        self.boundary = False  # a request began or ended in the data being parsed now
        self.peercert: Any = None
        self.over_limit = False
        self.lingering = False  # the reply is out: reading only until the client is done sending
        self.dropping = False  # lingering after a request the parser refused: data is not parsed
        self.linger_until = 0.0

    # -- deadlines ------------------------------------------------------------------------
    def arm(self, seconds: float) -> None:
        self.disarm()
        self.timer = self.loop.call_later(seconds, self.expire)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def expire(self) -> None:
        self.timer = None
        log.debug("gateway: a client overran its read deadline; closing %s", self.client)
        self.transport.abort()

    # -- the connection -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.peercert = transport.get_extra_info("peercert")
        count = len(self.connections)
        if count > 2 * self.limits.max_connections:  # far over: not even a reply
            transport.close()
            return
        self.over_limit = count > self.limits.max_connections
        self.arm(IDLE_SECONDS)

    def eof_received(self) -> bool | None:  # type: ignore[override]
        """The client closed its sending side. With a whole request in and its reply still to come,
        that is a half-close, not a departure (`curl` through some proxies, `shutdown(SHUT_WR)`):
        the reply is sent, then the connection closes. Otherwise the connection closes now."""
        cycle = self.cycle
        if (isinstance(cycle, Exchange) and not cycle.more_body and not cycle.response_complete
                and not cycle.disconnected):
            cycle.keep_alive = False  # nothing more can come: close once the reply is out
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        cycle = self.cycle
        if isinstance(cycle, Exchange) and not cycle.response_complete and cycle.on_gone is not None:
            cycle.on_gone()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            self.arm(min(LINGER_QUIET_SECONDS, max(0.0, self.linger_until - self.loop.time())))
            if self.dropping:
                return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # no protocol switch here: answer, then close
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()
            else:
                self.cycle.keep_alive = False
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, Refused):
                self.refuse(cause.error)
            else:
                reason = cause if isinstance(cause, httptools.HttpParserError) else exc
                self.refuse(parser_error(str(reason) or type(reason).__name__))
            return
        if self.in_head and not self.boundary:  # a whole read of a head still arriving: count it
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES:
                self.refuse(head_too_large())
        self.boundary = False

    def close_after_reply(self) -> None:
        """Close after a reply that ends the connection; if the client is still sending the body
        it was refused, read and drop it for a while first, so that it reads the answer
        rather than a reset."""
        unread = self.cycle is not None and self.cycle.more_body and not self.pipeline
        if unread:
            self.linger(parse=True)
        else:
            self.transport.close()

    def linger(self, parse: bool) -> None:
        """Half-close, and read (parsing, to find the body's end, or not) for a while before closing."""
        if not self.transport.can_write_eof():  # TLS: no half-close
            self.transport.close()
            return
        self.lingering, self.dropping = True, not parse
        self.linger_until = self.loop.time() + LINGER_SECONDS
        self.transport.write_eof()
        self.flow.resume_reading()
        self.arm(LINGER_QUIET_SECONDS)

    def refuse(self, error: HttpError) -> None:
        """Answer ``error`` and close, unless a reply is under way (then just close after it)."""
        self.disarm()
        if self.lingering:
            self.transport.close()
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        oip = bool(getattr(self, "url", b"").startswith(b"/v2"))
        self.transport.write(error_reply(error, oip, self.request_id()))
        self.linger(parse=False)

    def request_id(self) -> str:
        """The refused request's X-Request-Id, checked as a served one's, if llhttp read that header
        whole before it stopped (it hands a header over once the next begins; each request's first
        byte starts a fresh list, so an earlier request's id is never taken)."""
        value = next((v for name, v in getattr(self, "headers", ()) if name == b"x-request-id"), None)
        return echoed_request_id(value.decode("latin-1")) if value is not None else ""

    # -- parser callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.boundary, self.head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.lingering:  # what follows a refused body is never served
            return
        self.disarm()
        if len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) > MAX_HEAD_BYTES:
            raise Refused(head_too_large())  # a head that came in one read
        scope: Any = self.scope  # uvicorn's HTTPScope, with keys of the gateway's own
        http_version = self.parser.get_http_version()
        scope["method"] = self.parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        url = httptools.parse_url(self.url)
        path = url.path.decode("ascii")
        scope.update(path=urllib.parse.unquote(path) if "%" in path else path, raw_path=url.path,
                     query_string=url.query or b"")
        scope["museforge.peercert"] = self.peercert
        scope["museforge.over_limit"] = self.over_limit
        previous = self.cycle
        self.cycle = exchange = Exchange(
            scope=scope, transport=self.transport, flow=self.flow, logger=log,
            access_logger=self.access_logger, access_log=False,
            default_headers=self.server_state.default_headers, message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and self.parser.should_keep_alive(),
            on_response=self.on_response_complete)
        exchange.body_seconds = body_deadline(self.headers)
        exchange.on_close = self.close_after_reply
        if previous is None or previous.response_complete:
            self._start_asgi_task(exchange, self.app)
        else:  # pipelined: it waits for the reply before it, reading paused meanwhile
            self.flow.pause_reading()
            self.pipeline.appendleft((exchange, self.app))

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        super()._start_asgi_task(cycle, app)
        if isinstance(cycle, Exchange) and cycle.body_seconds and cycle.more_body:
            self.arm(cycle.body_seconds)

    def on_message_complete(self) -> None:
        if self.lingering:
            self.transport.close()
            return
        super().on_message_complete()
        self.in_head, self.boundary = True, True
        if self.cycle is not None and self.cycle.body_seconds:  # type: ignore[attr-defined]
            self.disarm()
        if not self.pipeline:
            # The running request's body is all in, but its last part may have paused reading
            # (past the high-water mark) and nothing reads again until the reply is out: read on,
            # or a client leaving while the call runs goes unseen. What follows is the next
            # request, whose head pauses reading again (see on_headers_complete).
            self.flow.resume_reading()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.lingering and not self.transport.is_closing():
            self.head_bytes = 0
            self.arm(IDLE_SECONDS)  # the idle time and the next request's headers


def body_deadline(headers: list[tuple[bytes, bytes]]) -> float:
    """Seconds a request's body may take to arrive (0: it has none)."""
    for name, value in headers:
        if name == b"transfer-encoding":
            return BODY_SECONDS  # refused before it is read: a little time to answer
        if name == b"content-length":
            length = int(value)
            return BODY_SECONDS + length / MIB if length else 0.0
    return 0.0


"""The gateway's HTTP/1.1 request handler: framing, origin and key checks, then transcoding.

Everything a request could abuse is checked before its body is read: one unambiguous
length (no Transfer-Encoding, a single Content-Length), a Host and Origin the server
trusts (a web page must not drive a local server, directly or by DNS rebinding), a
known API key when auth is on, and room in the server's body-byte budget. Each phase of
reading has a deadline, so slow clients cannot hold the handler threads.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import grpc
from google.protobuf.message import Message

from .auth import bearer_token
from .gateway_json import (
    HttpError,
    apply_query,
    bad_request,
    load_json,
    parse_body,
    rpc_error_body,
    set_path_fields,
    to_json,
)
from .gateway_routes import Route, find_route

if TYPE_CHECKING:
    from .gateway import GatewayHTTPServer

log = logging.getLogger("museforge.gateway")

FORWARDED_HEADERS = ("authorization", "traceparent", "tracestate", "x-request-id")
IDLE_SECONDS = 30.0  # to send a request's line and headers (and between kept-alive requests)
BODY_SECONDS = 30.0  # to send a body, plus one second per MiB
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
UNUSED_BODY_LIMIT = 64 * 1024  # a stray body on a GET is read and dropped up to this size


class Deadlines:
    """Shuts connections down when a read phase overruns its deadline (a slow or stalled client).

    One thread for the whole server, watching a heap of deadlines: a timer thread per
    request would cost more than the request.
    """

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, socket.socket]] = []
        self.cancelled: set[int] = set()
        self.tokens = itertools.count()
        self.changed = threading.Condition()
        self.closed = False
        threading.Thread(target=self.watch, name="museforge-http-deadlines", daemon=True).start()

    def add(self, connection: socket.socket, seconds: float) -> int:
        with self.changed:
            token = next(self.tokens)
            heapq.heappush(self.heap, (time.monotonic() + seconds, token, connection))
            self.changed.notify()
            return token

    def cancel(self, token: int) -> None:
        with self.changed:
            self.cancelled.add(token)  # dropped when its deadline comes up

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify()

    def watch(self) -> None:
        while True:
            with self.changed:
                while not self.closed and (not self.heap or self.heap[0][0] > time.monotonic()):
                    self.changed.wait(self.heap[0][0] - time.monotonic() if self.heap else None)
                if self.closed:
                    return
                _, token, connection = heapq.heappop(self.heap)
                if token in self.cancelled:
                    self.cancelled.discard(token)
                    continue
            with contextlib.suppress(OSError):  # already closed
                connection.shutdown(socket.SHUT_RDWR)


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: engines reuse one connection
    server_version = "museforge-gateway"
    server: GatewayHTTPServer
    timeout = IDLE_SECONDS  # any single read or write
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits
    # for the client's delayed ACK (~40 ms per call on Linux).
    disable_nagle_algorithm = True
    deadline: int | None = None  # the token of the read deadline running now
    expects_continue = False
    body_done = False
    held = 0  # body bytes held from the server's budget

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        self.expects_continue, self.body_done, self.held = False, False, 0
        self.deadline = self.server.deadlines.add(self.connection, IDLE_SECONDS)
        try:
            super().handle_one_request()
        finally:
            self.end_deadline()
            if self.held:
                self.server.budget.release(self.held)
                self.held = 0

    def end_deadline(self) -> None:
        if self.deadline is not None:
            self.server.deadlines.cancel(self.deadline)
            self.deadline = None

    def handle_expect_100(self) -> bool:
        # "100 Continue" is sent only once the request has passed its checks (read_body).
        self.expects_continue = True
        return True

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_PATCH(self) -> None:
        self.dispatch("PATCH")

    def do_HEAD(self) -> None:
        self.dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        # CORS preflight for browser tools, answered only for the configured origins.
        self.end_deadline()
        try:
            self.check_framing()
        except HttpError as exc:
            self.close_connection = True
            self.send_json(exc.http_status, exc.body(), exc.headers)
            return
        allowed = bool(self.cors_origin())
        self.send_response(204 if allowed else 403)
        self.send_cors()
        self.send_header("Access-Control-Allow-Methods", "GET, POST, DELETE")
        self.send_header("Access-Control-Allow-Headers", ", ".join(("content-type", *FORWARDED_HEADERS)))
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        if not self.body_done:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()

    # -- dispatch --------------------------------------------------------------------------
    def dispatch(self, verb: str) -> None:
        self.end_deadline()  # the headers are in
        try:
            self.serve(verb)
        except HttpError as exc:
            if not self.body_done:  # unread body bytes would be taken for the next request
                self.close_connection = True
            self.send_json(exc.http_status, exc.body(), exc.headers)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError):
            self.close_connection = True
        except Exception:  # a bug must answer 500, not drop the connection
            log.exception("gateway: %s %s failed", verb, self.path)
            self.close_connection = True
            failure = HttpError(500, grpc.StatusCode.INTERNAL, "the gateway failed on this request (see log)")
            self.send_json(500, failure.body())

    def serve(self, verb: str) -> None:
        self.check_framing()
        self.check_origin()
        if self.server.draining:
            raise HttpError(503, grpc.StatusCode.UNAVAILABLE, "the server is shutting down",
                            headers={"Retry-After": "1"})
        url = urlsplit(self.path)
        if url.path == "/openapi.json" and verb == "GET":
            self.discard_body()
            self.send_json(200, self.server.openapi())
            return
        found = find_route(verb, url.path, self.server.routes)
        if not isinstance(found, tuple):
            if found:
                allowed = ", ".join(sorted(set(found)))
                raise HttpError(405, grpc.StatusCode.UNIMPLEMENTED, f"{verb} is not allowed on {url.path}; "
                                f"use {allowed}", headers={"Allow": allowed})
            raise HttpError(404, grpc.StatusCode.NOT_FOUND,
                            f"no route {verb} {url.path}; the routes are listed at /openapi.json")
        route, variables = found
        self.check_key(route)
        metadata = self.forwarded()
        query = parse_qs(url.query, keep_blank_values=True)
        if query and (route.takes_body or route.build is not None):
            raise bad_request(next(iter(query)), "this route takes no query parameters")
        if route.build is not None:
            request = route.build(variables, load_json(self.read_body()) if route.takes_body else None)
            if not route.takes_body:
                self.discard_body()
        else:
            request = self.proto_request(route, variables, query)
        if route.streaming:
            self.reply_stream(route, request, metadata)
        else:
            self.reply_unary(route, request, metadata)

    def proto_request(self, route: Route, variables: dict[str, str],
                      query: dict[str, list[str]]) -> Message:
        """The request message from the proto3 JSON body, or the query, plus the path variables."""
        request = route.request()
        if route.takes_body:
            parse_body(self.read_body(), request)
        else:
            self.discard_body()
            apply_query(request, query, route.path_fields)
        set_path_fields(request, variables)
        return request

    # -- checks before the body ----------------------------------------------------------------
    def check_framing(self) -> None:
        """One way to find the body's end, or the request is refused (and the connection closed)."""
        if self.headers.get_all("Transfer-Encoding"):
            raise HttpError(411, grpc.StatusCode.INVALID_ARGUMENT,
                            "Transfer-Encoding is not accepted: send the body with a Content-Length",
                            "Transfer-Encoding")
        if len(self.headers.get_all("Content-Length") or []) > 1:
            raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, "more than one Content-Length",
                            "Content-Length")
        self.body_done = self.content_length() == 0

    def check_origin(self) -> None:
        """Refuse what a browser sends on a foreign page's behalf, and DNS-rebound Host names."""
        origin = self.headers.get("Origin")
        if origin is not None and not self.cors_origin():
            raise HttpError(403, grpc.StatusCode.PERMISSION_DENIED,
                            f"origin {origin!r} may not call this server (see http_cors_origins)", "Origin")
        if self.headers.get("Sec-Fetch-Site", "") in ("cross-site", "same-site") and origin is None:
            raise HttpError(403, grpc.StatusCode.PERMISSION_DENIED,
                            "cross-site browser requests need an allowed Origin", "Sec-Fetch-Site")
        host = self.headers.get("Host")
        if self.server.loopback and host is not None:
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in LOOPBACK_HOSTS:
                raise HttpError(403, grpc.StatusCode.PERMISSION_DENIED,
                                f"Host {host!r} is not this loopback server's name", "Host")

    def check_key(self, route: Route) -> None:
        """With auth on, an unknown key is refused before its body costs memory (the gRPC guard
        still checks the key's scope)."""
        keys = self.server.keys
        if keys is None or route.service in self.server.open_services:
            return
        presented = bearer_token(self.headers.get("Authorization", ""))
        if not presented or keys.find(presented) is None:
            reason = "missing API key" if not presented else "unknown API key"
            message = f"{reason}: send 'Authorization: Bearer <key>'"
            raise HttpError(401, grpc.StatusCode.UNAUTHENTICATED, message,
                            headers={"WWW-Authenticate": "Bearer"})

    def forwarded(self) -> list[tuple[str, str]]:
        """The headers passed on as gRPC metadata; values must be printable ASCII, as metadata is."""
        pairs = []
        for name in FORWARDED_HEADERS:
            value = self.headers.get(name)
            if value is None:
                continue
            if not value.isascii() or not value.isprintable():
                raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT,
                                f"the {name} header must be printable ASCII", name)
            pairs.append((name, value))
        return pairs

    # -- request bodies ----------------------------------------------------------------------
    def content_length(self) -> int:
        text = (self.headers.get("Content-Length") or "0").strip()
        if not (text.isascii() and text.isdigit()):
            raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, f"bad Content-Length {text!r}",
                            "Content-Length")
        return int(text)

    def read_body(self) -> bytes:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            # Required even for an empty body: browsers cannot send it cross-site without
            # asking first (a CORS preflight), which only listed origins pass.
            raise HttpError(415, grpc.StatusCode.INVALID_ARGUMENT,
                            f"Content-Type must be application/json, got {content_type or 'none'}",
                            "Content-Type")
        length = self.content_length()
        limit = self.server.max_body
        if length > limit:
            raise HttpError(413, grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"body of {length} bytes is over the {limit}-byte limit (http_max_body_bytes)",
                            "body")
        if not length:
            return b""
        if not self.server.budget.acquire(length, BODY_SECONDS):
            raise HttpError(503, grpc.StatusCode.RESOURCE_EXHAUSTED, "too many request bodies in memory at "
                            "once; try again", headers={"Retry-After": "2"})
        self.held = length
        if self.expects_continue:
            self.send_response_only(100)
            self.end_headers()
        self.deadline = self.server.deadlines.add(self.connection, BODY_SECONDS + length / (1 << 20))
        try:
            data = self.rfile.read(length)
        finally:
            self.end_deadline()
        if len(data) != length:
            self.close_connection = True
            raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT,
                            f"the body ended after {len(data)} of {length} bytes", "body")
        self.body_done = True
        return data

    def discard_body(self) -> None:
        length = self.content_length()
        if length > UNUSED_BODY_LIMIT:
            raise HttpError(413, grpc.StatusCode.INVALID_ARGUMENT, "this route takes no body", "body")
        if length:
            self.rfile.read(length)
        self.body_done = True

    # -- replies -----------------------------------------------------------------------------
    def reply_unary(self, route: Route, request: Message, metadata: list[tuple[str, str]]) -> None:
        try:
            reply = self.server.gateway.call(route, request, metadata)
        except grpc.RpcError as error:
            self.send_rpc_error(error)
            return
        if route.render is not None:
            self.send_json(*route.render(reply))
        else:
            self.send_json(200, to_json(reply))

    def reply_stream(self, route: Route, request: Message, metadata: list[tuple[str, str]]) -> None:
        call = self.server.gateway.call(route, request, metadata)
        try:
            # The first message decides the HTTP status: a call refused at once gets a real
            # error status, not a 200 with an error line.
            first = next(call, None)
        except grpc.RpcError as error:
            self.send_rpc_error(error)
            return
        chunked = self.request_version != "HTTP/1.0"  # 1.0 clients read to the end instead
        self.send_response(200)
        self.send_cors()
        self.send_header("Content-Type", "application/x-ndjson")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            for line in self.stream_lines(first, call):
                self.write_part(line, chunked)
            if chunked:
                self.write_part(b"", chunked)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError):
            call.cancel()  # the client went away: stop the work it asked for
            self.close_connection = True

    def stream_lines(self, first: Message | None, call: Iterator[Message]) -> Iterator[bytes]:
        if first is None:
            return
        yield json.dumps({"result": to_json(first)}).encode() + b"\n"
        try:
            for message in call:
                yield json.dumps({"result": to_json(message)}).encode() + b"\n"
        except grpc.RpcError as error:
            _, body, _ = rpc_error_body(error)
            yield json.dumps(body).encode() + b"\n"

    def write_part(self, data: bytes, chunked: bool) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
        self.wfile.flush()

    def send_rpc_error(self, error: grpc.RpcError) -> None:
        status, body, retry_after = rpc_error_body(error)
        extra = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else {}
        self.send_json(status, body, extra)

    def send_json(self, status: int, document: Any, headers: Mapping[str, str] | None = None) -> None:
        if self.path.startswith("/v2") and isinstance(document.get("error"), dict):
            document = {"error": document["error"]["message"]}  # the OIP's REST error form
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def cors_origin(self) -> str:
        origin = self.headers.get("Origin", "")
        allowed = self.server.cors_origins
        return origin if origin and ("*" in allowed or origin in allowed) else ""

    def send_cors(self) -> None:
        origin = self.cors_origin()
        if origin:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Expose-Headers", "Retry-After")
            self.send_header("Vary", "Origin")

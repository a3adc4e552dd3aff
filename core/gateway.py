"""The HTTP/JSON gateway: museforge.v1, jobs and health over HTTP/1.1 for clients without gRPC.

Each HTTP request becomes a call to the server's own gRPC services over a private Unix
socket, so it passes the same interceptors as any gRPC call: API keys and scopes
(``Authorization: Bearer`` is forwarded), per-key limits, metrics, time limits, and the
same validation with the same messages. Streaming calls answer with newline-delimited
JSON (``{"result": ...}`` per message, ``{"error": ...}`` if the call fails mid-way).
The OpenAPI document is at ``/openapi.json``.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

from .config import Settings
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
from .gateway_oip import OIP_ROUTES
from .gateway_routes import ROUTES, Route, find_route

log = logging.getLogger("museforge.gateway")

FORWARDED_HEADERS = ("authorization", "traceparent", "tracestate", "x-request-id")
IDLE_SECONDS = 30.0  # a keep-alive connection with no request for this long is closed
SERVED_ROUTES = ROUTES + OIP_ROUTES
# Bodies carry media as base64 (4 bytes per 3) inside JSON: allow that much over the gRPC limit.
JSON_OVERHEAD = 1 << 20


class Gateway:
    """Calls the gRPC methods behind the routes, over one channel to the server itself."""

    def __init__(self, target: str, max_message_bytes: int) -> None:
        self.channel = grpc.insecure_channel(target, options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ])
        self.max_body = max_message_bytes * 4 // 3 + JSON_OVERHEAD
        self.callables: dict[str, Any] = {}
        for route in SERVED_ROUTES:
            make = self.channel.unary_stream if route.streaming else self.channel.unary_unary
            self.callables[route.method] = make(
                route.method, request_serializer=route.request.SerializeToString,
                response_deserializer=route.response.FromString)

    def unary(self, route: Route, request: Message, metadata: list[tuple[str, str]]) -> Message:
        reply: Message = self.callables[route.method](request, metadata=metadata)
        return reply

    def stream(self, route: Route, request: Message, metadata: list[tuple[str, str]]) -> Any:
        return self.callables[route.method](request, metadata=metadata)

    def close(self) -> None:
        self.channel.close()


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: engines reuse one connection
    server_version = "museforge-gateway"
    server: GatewayHTTPServer
    timeout = IDLE_SECONDS  # socket timeout between requests on a kept-alive connection
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits
    # for the client's delayed ACK (~40 ms per call on Linux).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

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

    def do_OPTIONS(self) -> None:
        # CORS preflight for browser tools, answered only for the configured origins.
        self.send_response(204 if self.cors_origin() else 403)
        self.send_cors()
        self.send_header("Access-Control-Allow-Methods", "GET, POST, DELETE")
        self.send_header("Access-Control-Allow-Headers", ", ".join(("content-type", *FORWARDED_HEADERS)))
        self.send_header("Access-Control-Max-Age", "600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # -- dispatch --------------------------------------------------------------------------
    def dispatch(self, verb: str) -> None:
        url = urlsplit(self.path)
        try:
            if url.path == "/openapi.json" and verb == "GET":
                self.send_json(200, self.server.openapi())
                return
            found = find_route(verb, url.path, SERVED_ROUTES)
            if not isinstance(found, tuple):
                self.discard_body()
                if found:
                    verbs = ", ".join(sorted(set(found)))
                    raise HttpError(405, grpc.StatusCode.UNIMPLEMENTED,
                                    f"{verb} is not allowed on {url.path}; use {verbs}")
                raise HttpError(404, grpc.StatusCode.NOT_FOUND,
                                f"no route {verb} {url.path}; the routes are listed at /openapi.json")
            route, variables = found
            query = parse_qs(url.query, keep_blank_values=True)
            if route.build is not None:
                if query:
                    raise bad_request(next(iter(query)), "this route takes no query parameters")
                document = None
                if route.takes_body:
                    document = load_json(self.read_body())
                else:
                    self.discard_body()
                request = route.build(variables, document)
            else:
                request = self.proto_request(route, variables, query)
        except HttpError as exc:
            self.send_json(exc.http_status, exc.body())
            return
        if route.streaming:
            self.reply_stream(route, request)
        else:
            self.reply_unary(route, request)

    def proto_request(self, route: Route, variables: dict[str, str],
                      query: dict[str, list[str]]) -> Message:
        """The request message from the proto3 JSON body, or the query, plus the path variables."""
        request = route.request()
        if route.takes_body:
            parse_body(self.read_body(), request)
            if query:
                raise bad_request(next(iter(query)), "this route takes its fields in the JSON body")
        else:
            self.discard_body()
            apply_query(request, query, route.path_fields)
        set_path_fields(request, variables)
        return request

    def forwarded(self) -> list[tuple[str, str]]:
        return [(name, self.headers[name]) for name in FORWARDED_HEADERS if self.headers.get(name)]

    def reply_unary(self, route: Route, request: Message) -> None:
        try:
            reply = self.server.gateway.unary(route, request, self.forwarded())
        except grpc.RpcError as error:
            self.send_rpc_error(error)
            return
        if route.render is not None:
            self.send_json(*route.render(reply))
            return
        status = 200
        if isinstance(reply, health_pb2.HealthCheckResponse) and reply.status != reply.SERVING:
            status = 503  # load balancers read the HTTP status
        self.send_json(status, to_json(reply))

    def reply_stream(self, route: Route, request: Message) -> None:
        call = self.server.gateway.stream(route, request, self.forwarded())
        try:
            # The first message decides the HTTP status: a call refused at once gets a real
            # error status, not a 200 with an error line.
            first = next(call, None)
        except grpc.RpcError as error:
            self.send_rpc_error(error)
            return
        self.send_response(200)
        self.send_cors()
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for line in self.stream_lines(first, call):
                self.write_chunk(line)
            self.write_chunk(b"")
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

    # -- request bodies ----------------------------------------------------------------------
    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise HttpError(411, grpc.StatusCode.INVALID_ARGUMENT, "send the body with a Content-Length")
        content_type = self.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        length = self.content_length()
        if length and content_type != "application/json":
            self.close_connection = True
            raise HttpError(415, grpc.StatusCode.INVALID_ARGUMENT,
                            f"Content-Type must be application/json, got {content_type}", "Content-Type")
        if length > self.server.gateway.max_body:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            raise HttpError(413, grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"body of {length} bytes is over the {self.server.gateway.max_body}-byte limit "
                            "(max_message_bytes, with room for base64)", "body")
        return self.rfile.read(length) if length else b""

    def content_length(self) -> int:
        text = self.headers.get("Content-Length", "0")
        if not text.isdigit():
            self.close_connection = True
            raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, f"bad Content-Length {text!r}",
                            "Content-Length")
        return int(text)

    def discard_body(self) -> None:
        length = self.content_length()
        if length > self.server.gateway.max_body:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    # -- replies -----------------------------------------------------------------------------
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
        self.wfile.write(data)

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def cors_origin(self) -> str:
        origin = self.headers.get("Origin", "")
        allowed = self.server.cors_origins
        return origin if origin and ("*" in allowed or origin in allowed) else ""

    def send_cors(self) -> None:
        origin = self.cors_origin()
        if origin:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")


class GatewayHTTPServer(HTTPServer):
    """An HTTP/1.1 server whose connections are served by a bounded pool of threads."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], gateway: Gateway, threads: int,
                 tls: ssl.SSLContext | None, cors_origins: tuple[str, ...]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, GatewayHandler)
        self.gateway = gateway
        self.cors_origins = cors_origins
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="museforge-http")
        self._openapi: dict[str, Any] | None = None
        if tls is not None:
            # The handshake happens in the worker thread, so a slow client cannot stall accept().
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            from .openapi import openapi_document

            self._openapi = openapi_document()
        return self._openapi

    def process_request(self, request: Any, client_address: Any) -> None:
        self.pool.submit(self.work, request, client_address)

    def work(self, request: Any, client_address: Any) -> None:
        try:
            if isinstance(request, ssl.SSLSocket):
                request.settimeout(IDLE_SECONDS)
                request.do_handshake()
            self.finish_request(request, client_address)
        except (ssl.SSLError, OSError) as exc:
            log.debug("connection from %s ended: %s", client_address, exc)
        except Exception:  # a bug in a handler must not take the pool thread down silently
            log.exception("HTTP request from %s failed", client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


class RunningGateway:
    """The gateway's HTTP server thread and the private socket it reaches the gRPC server by."""

    def __init__(self, http: GatewayHTTPServer, gateway: Gateway, socket_dir: Path) -> None:
        self.http = http
        self.gateway = gateway
        self.socket_dir = socket_dir
        self.thread = threading.Thread(target=http.serve_forever, name="museforge-http-accept", daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.http.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"

    def stop_accepting(self) -> None:
        """No new connections; requests in flight keep their gRPC calls until close()."""
        self.http.shutdown()
        self.http.server_close()

    def close(self) -> None:
        self.stop_accepting()
        self.gateway.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def private_socket() -> tuple[Path, str]:
    """A Unix socket path in a fresh directory only this user can enter (mkdtemp makes it 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="museforge-gw-"))
    return directory, f"unix:{directory / 'grpc.sock'}"


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_client_ca:  # mutual TLS over HTTP too: the socket hop must not bypass it
        context.load_verify_locations(settings.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def start_gateway(settings: Settings, host: str, port: int, socket_dir: Path, target: str) -> RunningGateway:
    gateway = Gateway(target, settings.max_message_bytes)
    http = GatewayHTTPServer((host, port), gateway, settings.http_threads, tls_context(settings),
                             tuple(settings.http_cors_origins))
    return RunningGateway(http, gateway, socket_dir)



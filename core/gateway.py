"""The HTTP/JSON gateway: museforge.v1, jobs and health over HTTP/1.1 for clients without gRPC.

Each HTTP request becomes a call to the server's own gRPC services over a private Unix
socket, so it passes the same interceptors as any gRPC call: API keys and scopes
(``Authorization: Bearer`` is forwarded), per-key limits, metrics, time limits, and the
same validation with the same messages. Streaming calls answer with newline-delimited
JSON (``{"result": ...}`` per message, ``{"error": ...}`` if the call fails mid-way).
The OpenAPI document is at ``/openapi.json``; the request handling is in gateway_http.
"""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from .auth import KeyRing
from .budget import ByteBudget
from .config import Settings
from .exposure import is_loopback
from .gateway_http import IDLE_SECONDS, Deadlines, GatewayHandler
from .gateway_oip import OIP_ROUTES
from .gateway_routes import ROUTES, Route

log = logging.getLogger("museforge.gateway")

SERVED_ROUTES = ROUTES + OIP_ROUTES
SOCKET_PATH_LIMIT = 100  # AF_UNIX paths stop at 107 bytes on Linux
PENDING_PER_THREAD = 4  # accepted connections allowed to wait for a thread, per thread


class Gateway:
    """Calls the gRPC methods behind the routes, over one channel to the server itself."""

    def __init__(self, target: str, max_message_bytes: int) -> None:
        self.channel = grpc.insecure_channel(target, options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ])
        self.callables: dict[str, Any] = {}
        for route in SERVED_ROUTES:
            make = self.channel.unary_stream if route.streaming else self.channel.unary_unary
            self.callables[route.method] = make(
                route.method, request_serializer=route.request.SerializeToString,
                response_deserializer=route.response.FromString)

    def call(self, route: Route, request: Message, metadata: list[tuple[str, str]]) -> Any:
        """The reply message, or for a streaming route the call to iterate (and cancel)."""
        return self.callables[route.method](request, metadata=metadata)

    def close(self) -> None:
        self.channel.close()


class GatewayHTTPServer(HTTPServer):
    """An HTTP/1.1 server whose connections are served by a bounded pool of threads."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], gateway: Gateway, settings: Settings, keys: KeyRing | None,
                 tls: ssl.SSLContext | None, budget: ByteBudget | None = None) -> None:
        # Everything server_close() uses exists before the base class binds (and may fail).
        self.pool = ThreadPoolExecutor(settings.http_threads, thread_name_prefix="museforge-http")
        self.max_pending = settings.http_threads * PENDING_PER_THREAD
        self.pending = 0
        self.pending_lock = threading.Lock()
        self.draining = False
        self.gateway = gateway
        self.routes = SERVED_ROUTES
        self.cors_origins = tuple(settings.http_cors_origins)
        self.keys = keys
        self.open_services = set(settings.open_services)
        self.max_body = settings.http_max_body_bytes
        # Bodies share the server's budget of request bytes in flight with the gRPC calls.
        self.budget = budget or ByteBudget(settings.max_request_bytes_in_flight)
        self.loopback = is_loopback(address[0])  # then Host must name loopback (DNS rebinding)
        self._openapi: dict[str, Any] | None = None
        self.deadlines = Deadlines()
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, GatewayHandler)
        if tls is not None:
            # The handshake happens in the worker thread, so a slow client cannot stall accept().
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            from .openapi import openapi_document

            self._openapi = openapi_document()
        return self._openapi

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.pending_lock:
            full = self.pending >= self.max_pending
            if not full:
                self.pending += 1
        if full:  # every thread busy and the queue long: refuse rather than pile up sockets
            log.warning("gateway: %d connections waiting; refusing %s", self.max_pending, client_address)
            self.shutdown_request(request)
            return
        self.pool.submit(self.work, request, client_address)

    def work(self, request: Any, client_address: Any) -> None:
        try:
            if self.draining:
                return
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
            with self.pending_lock:
                self.pending -= 1

    def server_close(self) -> None:
        super().server_close()
        self.deadlines.close()
        self.pool.shutdown(wait=False)  # queued connections are closed by work() while draining


class RunningGateway:
    """The gateway's HTTP server thread and the private socket it reaches the gRPC server by."""

    def __init__(self, http: GatewayHTTPServer, gateway: Gateway, socket_dir: Path) -> None:
        self.http = http
        self.gateway = gateway
        self.socket_dir = socket_dir
        self.thread = threading.Thread(target=http.serve_forever, name="museforge-http-accept", daemon=True)

    def start(self) -> RunningGateway:
        self.thread.start()
        return self

    @property
    def address(self) -> str:
        host, port = self.http.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"

    def stop_accepting(self) -> None:
        """No new connections or requests (those arriving get 503); calls in flight finish."""
        self.http.draining = True
        if self.thread.is_alive():
            self.http.shutdown()
        self.http.server_close()

    def close(self) -> None:
        self.stop_accepting()
        self.gateway.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def private_socket() -> tuple[Path, str]:
    """A Unix socket path in a fresh directory only this user can enter (mkdtemp makes it 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="museforge-gw-"))
    if len(str(directory / "grpc.sock")) > SOCKET_PATH_LIMIT:  # a long TMPDIR
        shutil.rmtree(directory, ignore_errors=True)
        directory = Path(tempfile.mkdtemp(prefix="museforge-gw-", dir="/tmp"))
    return directory, f"unix:{directory / 'grpc.sock'}"


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(Path(settings.tls_cert).expanduser(), Path(settings.tls_key).expanduser())
    if settings.tls_client_ca:  # mutual TLS over HTTP too: the socket hop must not bypass it
        context.load_verify_locations(Path(settings.tls_client_ca).expanduser())
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def bind_gateway(settings: Settings, host: str, port: int, socket_dir: Path, target: str,
                 keys: KeyRing | None, budget: ByteBudget | None = None) -> RunningGateway:
    """Bind the HTTP port (raises OSError when taken); ``start()`` the result to serve."""
    gateway = Gateway(target, settings.max_message_bytes)
    try:
        http = GatewayHTTPServer((host, port), gateway, settings, keys, tls_context(settings), budget)
    except BaseException:
        gateway.close()
        raise
    return RunningGateway(http, gateway, socket_dir)

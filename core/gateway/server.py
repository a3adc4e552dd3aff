"""The HTTP/JSON gateway: museforge.v1, jobs, health and the OIP's REST form over HTTP/1.1.

It runs in the gRPC server's own event loop, on uvicorn's HTTP/1.1 protocol (the llhttp
parser through httptools), and calls the server's services in-process: each request runs
the same method handler behind the same interceptors as a gRPC call (API keys and scopes
from ``Authorization: Bearer``, per-key limits, metrics, tracing from ``traceparent``,
time limits) with the same validation and messages. Streaming calls answer with
newline-delimited JSON (``{"result": ...}`` per message, ``{"error": ...}`` if the call
fails mid-way). The OpenAPI document is at ``/openapi.json``. Connection handling is in
gateway_http, request handling in gateway_app, the in-process calls in gateway_calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path

import uvicorn
from uvicorn.server import ServerState

from ..config import Settings
from ..server.auth import KeyRing
from ..server.bind_rules import is_loopback
from ..server.budget import ByteBudget
from ..server.metrics import Recorder
from ..server.tracing import SpanRecorder
from . import http_protocol as gateway_http
from .app import LOOPBACK_HOSTS, Request
from .calls import InProcess
from .http_protocol import ConnectionLimits, Exchange, GatewayProtocol
from .oip_routes import OIP_ROUTES
from .repository_routes import REPOSITORY_ROUTES
from .routes import ROUTES

log = logging.getLogger("museforge.gateway")

SERVED_ROUTES = ROUTES + OIP_ROUTES + REPOSITORY_ROUTES
BACKLOG = 2048  # connections the kernel queues before accept(): a burst of clients is not reset
SERVER_HEADER = (b"Server", b"museforge-gateway")


class Gateway:
    """What every request shares; called with each request's exchange."""

    def __init__(self, calls: InProcess, settings: Settings, keys: KeyRing | None, budget: ByteBudget,
                 loopback: bool) -> None:
        self.calls = calls
        self.routes = SERVED_ROUTES
        self.cors_origins = tuple(settings.http_cors_origins)
        self.studio = settings.http_studio
        self.keys = keys
        self.open_services = set(settings.open_services)
        self.max_body = settings.http_max_body_bytes
        self.budget = budget  # the server's budget of request bytes, shared with the gRPC calls
        # The names Host may give (http_allowed_hosts), else loopback's on a loopback address: a
        # gateway bound to 0.0.0.0 in a container, published on the host's 127.0.0.1, sees no
        # loopback address of its own and must be told its names.
        self.allowed_hosts = frozenset(h.lower() for h in settings.http_allowed_hosts) or (
            LOOPBACK_HOSTS if loopback else frozenset())
        self.hosts_said = ("a name this server answers to (http_allowed_hosts)" if settings.http_allowed_hosts
                           else "this loopback server's name")  # what a refused Host is told it is not
        if not self.allowed_hosts and keys is None:
            log.warning("the HTTP gateway answers any Host name without API keys: a web page could reach "
                        "it through DNS rebinding; set http_allowed_hosts to the names it is reached by")
        # A key refused before the call reaches the interceptors is counted here, as the gRPC
        # port's refusals are by the Recorder: key guessing over HTTP shows in the metrics too.
        self.metrics = next((i.metrics for i in calls.interceptors if isinstance(i, Recorder)), None)
        self.spans = next((i for i in calls.interceptors if isinstance(i, SpanRecorder)), None)  # traced too
        self.executor = ThreadPoolExecutor(settings.http_threads, thread_name_prefix="museforge-http")
        self.draining = False
        self._openapi: bytes | None = None
        self.live: set[Request] = set()  # requests in flight: told when the server stops them

    async def __call__(self, exchange: Exchange) -> None:
        request = Request(self, exchange)
        self.live.add(request)
        try:
            await request.run()
        finally:
            self.live.discard(request)

    def openapi_bytes(self) -> bytes:
        if self._openapi is None:
            from .openapi import openapi_document

            self._openapi = json.dumps(openapi_document()).encode()
        return self._openapi


class RunningGateway:
    """The gateway's listening socket and connections, in the event loop that serves gRPC."""

    def __init__(self, gateway: Gateway, listener: socket.socket, tls: ssl.SSLContext | None,
                 limits: ConnectionLimits) -> None:
        self.gateway = gateway
        self.listener = listener
        self.tls = tls
        self.limits = limits
        # uvicorn's protocol reads its knobs from a Config; the server loop is ours.
        self.config = uvicorn.Config(
            gateway, http=GatewayProtocol, ws="none", lifespan="off", interface="asgi3", log_config=None,
            access_log=False, proxy_headers=False, server_header=False, date_header=False,
            timeout_keep_alive=int(gateway_http.IDLE_SECONDS))
        self.config.load()
        self.state = ServerState()
        self.server: asyncio.base_events.Server | None = None
        self.ticker: asyncio.TimerHandle | None = None

    async def start(self) -> RunningGateway:
        loop = asyncio.get_running_loop()

        def connection() -> GatewayProtocol:
            return GatewayProtocol(self.config, self.state, {}, self.limits, _loop=loop)

        handshake = gateway_http.IDLE_SECONDS if self.tls else None
        self.server = await loop.create_server(connection, sock=self.listener, ssl=self.tls, backlog=BACKLOG,
                                               ssl_handshake_timeout=handshake)
        self.tick()
        return self

    def tick(self) -> None:
        """The Date header, once a second (formatting it per reply costs more)."""
        self.state.default_headers = [SERVER_HEADER, (b"Date", formatdate(usegmt=True).encode())]
        self.ticker = asyncio.get_running_loop().call_later(1.0, self.tick)

    @property
    def address(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def connections(self) -> int:
        return len(self.state.connections)

    async def stop_accepting(self) -> None:
        """No new connections or requests (those arriving get 503); calls in flight finish."""
        self.gateway.draining = True
        if self.server is not None:
            self.server.close()
        else:
            self.listener.close()
        for connection in list(self.state.connections):
            connection.shutdown()  # idle ones close now, busy ones after their reply

    async def close(self, grace: float | None = None) -> None:
        """Wait up to ``grace`` seconds for the requests in flight, then cancel them and hang up."""
        await self.stop_accepting()
        tasks = list(self.state.tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            told = set()
            for request in list(self.gateway.live):  # past the grace: each says so before it ends
                request.stop("shutdown", request.task)
                told.add(request.task)
            for task in pending:
                if task not in told:  # a second cancel would cut the line being said
                    task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        for connection in list(self.state.connections):
            connection.transport.abort()
        if self.ticker is not None:
            self.ticker.cancel()
        self.gateway.executor.shutdown(wait=False, cancel_futures=True)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(Path(settings.tls_cert).expanduser(), Path(settings.tls_key).expanduser())
    context.set_alpn_protocols(["http/1.1"])
    if settings.tls_client_ca:  # mutual TLS over HTTP too
        context.load_verify_locations(Path(settings.tls_client_ca).expanduser())
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """``reuse_port``: one of several server processes sharing the port (``serve --workers``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind((host, port))
        listener.listen(BACKLOG)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    return listener


def bind_gateway(settings: Settings, host: str, port: int, calls: InProcess, keys: KeyRing | None,
                 budget: ByteBudget, reuse_port: bool = False) -> RunningGateway:
    """Bind the HTTP port (raises OSError when taken); ``await start()`` the result to serve."""
    tls = tls_context(settings)
    listener = listen(host, port, reuse_port)
    gateway = Gateway(calls, settings, keys, budget, is_loopback(host))
    return RunningGateway(gateway, listener, tls, ConnectionLimits(settings.http_max_connections))


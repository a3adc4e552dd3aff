"""The gateway's request handling: checks before the body, JSON to protobuf, the call, and back.

Everything a request could abuse is checked before its body is read: one way to find the
body's end, a Host (HTTP/1.1) and an Origin the server trusts (a web page must not drive
a local server, directly or by DNS rebinding), a known API key when auth is on (on every
route but the open services', /openapi.json too), a body within ``http_max_body_bytes``
and within a quarter of the server's budget of request bytes, and room in that budget.
The body's bytes are charged to the budget as they arrive, so a client trickling a large
body holds only what it has sent; they stay charged until the call ends.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import grpc
from google.protobuf.message import Message

from ..ascii_numbers import ascii_number
from ..server.auth import bearer_token
from ..server.guard import OPEN_METHODS
from .binary_tensors import HEADER, HEADER_KEY, header_length
from .context import CallContext, peer_name
from .json_codec import (
    HttpError,
    apply_query,
    bad_request,
    load_json,
    parse_body,
    set_path_fields,
)
from .oip_routes import INFER, infer_from_body, infer_reply_binary
from .reply import FORWARDED_HEADERS, Replies, dumps
from .routes import Route, find_route
from .studio_files import HEADERS as STUDIO_HEADERS
from .studio_files import is_studio_path, studio_file

log = logging.getLogger("museforge.gateway")

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
UNUSED_BODY_LIMIT = 64 * 1024  # a stray body on a GET is read and dropped up to this size
BODY_SHARE = 4  # one body may hold at most this fraction of max_request_bytes_in_flight
ROOM_WAIT_SECONDS = 2.0  # how long a body waits for room in the budget before a 503
GRPC_TIMEOUT = re.compile(r"(\d{1,8})([HMSmun])")
TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


class Gone(Exception):
    """The client left mid-request."""


class Request(Replies):
    """One HTTP request through the gateway: checks, body, call."""

    task: asyncio.Task[Any] | None = None

    async def run(self) -> None:
        task = self.task = asyncio.current_task()
        self.exchange.on_gone = lambda: self.stop("gone", task)
        try:
            await self.serve()
        except HttpError as exc:
            await self.refuse(exc)
        except Gone:
            pass
        except asyncio.CancelledError:
            if not self.stopped:
                raise
            if self.stopped == "deadline":
                await self.refuse(HttpError(504, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))
            elif self.stopped == "shutdown":  # past the grace of a stopping server: said, then hung up
                await self.refuse(HttpError(503, grpc.StatusCode.UNAVAILABLE,
                                            "the server is shutting down; try again shortly"))
        except Exception:  # a bug must answer 500, not drop the connection
            said = f" (X-Request-Id {self.request_id()})" if self.request_id() else ""
            log.exception("gateway: %s %s failed%s", self.verb, self.path, said)
            await self.refuse(HttpError(500, grpc.StatusCode.INTERNAL,
                                        "the gateway failed on this request (see log)"))
        finally:
            self.exchange.on_gone = None
            if self.held:
                self.gateway.budget.release(self.held)
                self.held = 0

    def stop(self, why: str, task: asyncio.Task[Any] | None) -> None:
        """End the request's work: the client left, or its deadline passed."""
        if self.stopped:
            return
        self.stopped = why
        if self.context is not None:
            self.context.cancel(expired=why == "deadline")
        if task is not None and not task.done():
            task.cancel()

    async def refuse(self, error: HttpError) -> None:
        if self.exchange.response_started:  # mid-stream: the error is its last line
            if self.exchange.response_complete:
                return
            await self.exchange.send({"type": "http.response.body", "body": dumps(error.body()) + b"\n",
                                      "more_body": False})
            return
        if not self.body_done:  # unread body bytes would be taken for the next request
            self.close = True
        await self.send_json(error.http_status, error.body(), error.headers)

    # -- routing --------------------------------------------------------------------------
    async def serve(self) -> None:
        self.check_framing()
        if self.verb == "OPTIONS":
            await self.preflight()
            return
        self.check_origin()
        self.check_open()
        if is_studio_path(self.path) and self.verb in ("GET", "HEAD") and self.gateway.studio:
            await self.send_studio()
            return
        if self.path == "/openapi.json" and self.verb in ("GET", "HEAD"):
            self.check_key(None)
            await self.discard_body()
            document = self.gateway.openapi_bytes()
            await self.send(200, self.json_headers(len(document)), document)
            return
        route, variables = self.route()
        self.check_key(route)
        metadata = self.forwarded()
        deadline = self.deadline()
        query = parse_qs(self.query, keep_blank_values=True)
        if query and (route.takes_body or route.build is not None):
            raise bad_request(next(iter(query)), "this route takes no query parameters")
        request = await self.request_message(route, variables, query)
        self.context = CallContext(metadata, peer_name(self.scope.get("client")), deadline,
                                   self.scope.get("museforge.peercert"))
        timer = None
        if deadline is not None:
            if deadline <= asyncio.get_running_loop().time():  # spent reading the body: as gRPC, no call
                raise HttpError(504, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            task = asyncio.current_task()
            timer = asyncio.get_running_loop().call_at(deadline, self.stop, "deadline", task)
        try:
            if route.streaming:
                await self.reply_stream(route, request, self.context)
            else:
                await self.reply_unary(route, request, self.context)
        finally:
            if timer is not None:
                timer.cancel()

    async def send_studio(self) -> None:
        await self.discard_body()
        found = studio_file(self.path)
        if found is None:
            raise HttpError(404, grpc.StatusCode.NOT_FOUND, f"no studio file {self.path}")
        kind, data = found
        headers = self.reply_headers(kind, len(data), STUDIO_HEADERS)
        await self.send(200, headers, b"" if self.verb == "HEAD" else data)

    def route(self) -> tuple[Route, dict[str, str]]:
        # HEAD is a GET without the body (a load balancer's probe of /v1/health); the protocol
        # sends the headers only. Not on a stream, whose length is not known before it runs.
        head = self.verb == "HEAD"
        found = find_route("GET" if head else self.verb, self.path, self.gateway.routes)
        if isinstance(found, tuple):
            if not (head and found[0].streaming):
                return found
            verbs = ["GET"]
        else:
            verbs = found
        if verbs:
            allowed = ", ".join(sorted(set(verbs)))
            raise HttpError(405, grpc.StatusCode.UNIMPLEMENTED, f"{self.verb} is not allowed on {self.path}; "
                            f"use {allowed}", headers={"Allow": allowed})
        raise HttpError(404, grpc.StatusCode.NOT_FOUND,
                        f"no route {self.verb} {self.path}; the /v1 routes are listed at /openapi.json, "
                        "the /v2 ones in docs/http.md")

    async def request_message(self, route: Route, variables: dict[str, str],
                              query: dict[str, list[str]]) -> Message:
        """The request from the JSON body (or the query) and the path variables."""
        build = route.build
        if build is not None:
            if not route.takes_body:
                await self.discard_body()
                return build(variables, None)
            if route.method == INFER:
                return await self.infer_message(variables)
            raw = await self.read_body()
            return await self.offload(len(raw), lambda: build(variables, load_json(raw)))
        request = route.request()
        if route.takes_body:
            raw = await self.read_body()
            await self.offload(len(raw), parse_body, raw, request)
        else:
            await self.discard_body()
            apply_query(request, query, route.path_fields)
        set_path_fields(request, variables)
        return request

    async def infer_message(self, variables: dict[str, str]) -> Message:
        """The /v2 infer request, from JSON or from Triton's binary tensor extension (a JSON header
        of Inference-Header-Content-Length bytes, then the tensors' bytes)."""
        value = self.headers.get(HEADER_KEY)
        self.check_content_type(value is not None)
        if value is not None and len(value) > 1:  # it frames the body: two could be read two ways
            raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, f"more than one {HEADER} header", HEADER)
        length = header_length(value[0], self.length) if value is not None else None  # before the body
        raw = await self.read_body(type_checked=True)
        request, binary = await self.offload(len(raw), infer_from_body, variables, raw, length)
        if binary is not None:
            self.binary = partial(infer_reply_binary, binary=binary)
        return request

    # -- checks before the body ---------------------------------------------------------------
    def check_framing(self) -> None:
        """One way to find the body's end (llhttp refused the ambiguous ones), and a Host."""
        if "transfer-encoding" in self.headers:
            raise HttpError(411, grpc.StatusCode.INVALID_ARGUMENT,
                            "Transfer-Encoding is not accepted: send the body with a Content-Length",
                            "Transfer-Encoding")
        if self.scope["http_version"] != "1.0" and len(self.headers.get("host", ())) != 1:
            message = "an HTTP/1.1 request needs one Host header" if "host" not in self.headers \
                else "more than one Host header"
            raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, message, "Host")
        text = self.header("content-length", "0")
        length = ascii_number(text, 20)
        if length is None:
            raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, f"bad Content-Length {text[:24]!r}",
                            "Content-Length")
        self.length = length
        self.body_done = self.length == 0
        codings = [v.strip().lower() for v in self.headers.get("content-encoding", ())]
        coding = next((c for c in codings if c not in ("", "identity")), "")
        if length and coding:  # a compressed body is never read as if it were plain
            raise HttpError(415, grpc.StatusCode.INVALID_ARGUMENT,
                            f"Content-Encoding {coding[:24]!r} is not accepted: send the body uncompressed",
                            "Content-Encoding")

    def check_origin(self) -> None:
        """Refuse what a browser sends on a foreign page's behalf, and DNS-rebound Host names."""
        origin = self.headers.get("origin")
        if origin is not None and not self.cors_origin() and not self.same_origin():
            raise HttpError(403, grpc.StatusCode.PERMISSION_DENIED,
                            f"origin {origin[0]!r} may not call this server (see http_cors_origins)",
                            "Origin")
        if self.header("sec-fetch-site") in ("cross-site", "same-site") and origin is None \
                and not self.navigation():
            raise HttpError(403, grpc.StatusCode.PERMISSION_DENIED,
                            "cross-site browser requests need an allowed Origin", "Sec-Fetch-Site")
        host = self.headers.get("host")
        if self.gateway.allowed_hosts and host is not None:
            name = host[0].rsplit(":", 1)[0] if not host[0].endswith("]") else host[0]
            if name.lower() not in self.gateway.allowed_hosts:
                raise HttpError(403, grpc.StatusCode.PERMISSION_DENIED,
                                f"Host {host[0]!r} is not {self.gateway.hosts_said}", "Host")

    def navigation(self) -> bool:
        """A link followed or an address typed to open a page: browsers send no Origin on one, and
        the reply goes to the user's tab, not to the page that linked here. Only a GET or HEAD
        (every such route reads, none changes anything) and only a whole page, not a frame."""
        return self.verb in ("GET", "HEAD") and self.header("sec-fetch-mode") == "navigate" \
            and self.header("sec-fetch-dest") == "document"

    def same_origin(self) -> bool:
        """The request comes from a page this server served (the studio): its Origin names this Host."""
        host, origin = self.headers.get("host"), self.header("origin")
        return host is not None and origin in (f"http://{host[0]}", f"https://{host[0]}")

    def check_open(self) -> None:
        if self.gateway.draining:
            raise HttpError(503, grpc.StatusCode.UNAVAILABLE, "the server is shutting down",
                            headers={"Retry-After": "1"})
        if self.scope.get("museforge.over_limit"):
            self.close = True
            raise HttpError(503, grpc.StatusCode.UNAVAILABLE, "too many connections open "
                            "(http_max_connections); try again", headers={"Retry-After": "1"})

    def check_key(self, route: Route | None) -> None:
        """With auth on, an unknown key is refused before its body costs anything (the guard
        still checks the key's scope)."""
        keys = self.gateway.keys
        if keys is None or (route is not None and (route.service in self.gateway.open_services
                                                   or route.method in OPEN_METHODS)):
            return
        presented = bearer_token(self.header("authorization"))
        if not presented or keys.find(presented) is None:
            reason = "missing API key" if not presented else "unknown API key"
            message = f"{reason}: send 'Authorization: Bearer <key>'"
            if route is not None and self.gateway.metrics is not None:
                self.gateway.metrics.observe(route.method, "UNAUTHENTICATED", 0.0)
            if route is not None and self.gateway.spans is not None:
                carrier = {k: v for k, v in self.headers.items() if k in ("traceparent", "tracestate")}
                self.gateway.spans.refused(route.method, carrier, "UNAUTHENTICATED", message)
            raise HttpError(401, grpc.StatusCode.UNAUTHENTICATED, message,
                            headers={"WWW-Authenticate": "Bearer"})

    def forwarded(self) -> tuple[tuple[str, str], ...]:
        """The headers passed on as gRPC metadata; values must be printable ASCII, as metadata is."""
        pairs = []
        for name in FORWARDED_HEADERS:
            value = self.headers.get(name)
            if value is None:
                continue
            if not value[0].isascii() or not value[0].isprintable():
                raise HttpError(400, grpc.StatusCode.INVALID_ARGUMENT,
                                f"the {name} header must be printable ASCII", name)
            pairs.append((name, value[0]))
        return tuple(pairs)

    def deadline(self) -> float | None:
        """The event loop's time by which the call must end, from a ``grpc-timeout`` header."""
        text = self.header("grpc-timeout")
        if not text:
            return None
        found = GRPC_TIMEOUT.fullmatch(text)
        if found is None:
            raise bad_request("grpc-timeout", "must be 1 to 8 digits and a unit (H, M, S, m, u, n), e.g. 30S")
        seconds = int(found.group(1)) * TIMEOUT_UNITS[found.group(2)]
        return asyncio.get_running_loop().time() + seconds

    # -- bodies -------------------------------------------------------------------------------
    def check_content_type(self, binary: bool) -> None:
        content_type = self.header("content-type").split(";")[0].strip().lower()
        if content_type == "application/json":
            return
        # Required even for an empty body: browsers cannot send it cross-site without asking
        # first (a CORS preflight), which only listed origins pass. Triton's binary tensor
        # requests (tritonclient.http sends no Content-Type) carry Inference-Header-Content-Length,
        # which no page can send cross-site without that preflight either.
        if binary and "content-type" not in self.headers:
            return
        also = f" (or none, with {HEADER})" if binary else ""
        raise HttpError(415, grpc.StatusCode.INVALID_ARGUMENT,
                        f"Content-Type must be application/json{also}, got {content_type or 'none'}",
                        "Content-Type")

    async def read_body(self, type_checked: bool = False) -> bytearray:
        if not type_checked:
            self.check_content_type(False)
        length, limit, budget = self.length, self.gateway.max_body, self.gateway.budget
        if length > limit:
            raise HttpError(413, grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"body of {length} bytes is over the {limit}-byte limit (http_max_body_bytes)",
                            "body")
        if length > budget.total // BODY_SHARE:
            raise HttpError(413, grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"body of {length} bytes is over the {budget.total // BODY_SHARE}-byte share one "
                            f"request may hold (a quarter of max_request_bytes_in_flight)", "body")
        data = bytearray()
        if not length:
            return data
        await self.room(length)
        async for part in self.body_parts():
            if not budget.try_acquire(len(part)):
                raise self.no_room()
            self.held += len(part)
            data += part
        self.body_done = True
        return data

    async def room(self, length: int) -> None:
        """Wait a little for the budget to have room for the whole body, else refuse it unread."""
        waited = 0.0
        while not self.gateway.budget.fits(length):
            if waited >= ROOM_WAIT_SECONDS:
                raise self.no_room()
            await asyncio.sleep(0.05)
            waited += 0.05

    @staticmethod
    def no_room() -> HttpError:
        return HttpError(503, grpc.StatusCode.RESOURCE_EXHAUSTED, "too many request bytes in memory at "
                         "once (max_request_bytes_in_flight); try again", headers={"Retry-After": "2"})

    async def body_parts(self) -> AsyncIterator[bytes]:
        while True:
            message: Any = await self.exchange.receive()
            if message["type"] == "http.disconnect":
                raise Gone()
            if message["body"]:
                yield message["body"]
            if not message["more_body"]:
                return

    async def discard_body(self) -> None:
        if self.body_done:
            return
        if self.length > UNUSED_BODY_LIMIT:
            raise HttpError(413, grpc.StatusCode.INVALID_ARGUMENT, "this route takes no body", "body")
        async for _ in self.body_parts():
            pass
        self.body_done = True


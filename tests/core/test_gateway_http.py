"""The gateway's HTTP stack and its in-process calls: what the route tests do not reach.

One span per HTTP call (the same interceptor chain as gRPC, no second hop), deadlines
from ``grpc-timeout``, the connection limit, mutual TLS, and kept-alive connections
carrying large bodies one after another.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from museforge.config import Settings
from tests.core.certs import make_pki
from tests.servers import ServerThread

GENERATE_PATH = "/v1/generators/image.digits:generate"
TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
TRACEPARENT = f"00-{TRACE_ID:032x}-b7ad6b7169203331-01"


def settings(**extra: Any) -> Settings:
    return Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"], **extra)


def connect(server: ServerThread, tls: ssl.SSLContext | None = None) -> http.client.HTTPConnection:
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    if tls is not None:
        return http.client.HTTPSConnection(host, int(port), timeout=60, context=tls)
    return http.client.HTTPConnection(host, int(port), timeout=60)


def post(connection: http.client.HTTPConnection, body: bytes,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    connection.request("POST", GENERATE_PATH, body=body,
                       headers={"Content-Type": "application/json", **(headers or {})})
    reply = connection.getresponse()
    return reply.status, json.loads(reply.read())


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[ServerThread, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    with ServerThread(settings(), span_exporter=exporter) as server:
        yield server, exporter


def test_an_http_call_is_one_server_span_in_the_callers_trace(
    traced: tuple[ServerThread, InMemorySpanExporter],
) -> None:
    server, exporter = traced
    connection = connect(server)
    status, _ = post(connection, b'{"seed": 4}', {"traceparent": TRACEPARENT})
    assert status == 200
    for _ in range(200):  # the span ends just after the reply is written
        spans = [s for s in exporter.get_finished_spans() if s.context and s.context.trace_id == TRACE_ID]
        if spans:
            break
        time.sleep(0.05)
    [span] = spans  # one call, one span: no second hop through a socket
    assert span.name == "museforge.v1.Museforge/Generate"
    assert span.parent is not None and span.parent.is_remote
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == 0
    connection.close()


def test_grpc_timeout_sets_the_calls_deadline(traced: tuple[ServerThread, InMemorySpanExporter]) -> None:
    server, _ = traced
    connection = connect(server)
    status, reply = post(connection, b'{"seed": 4, "count": 8}', {"grpc-timeout": "1n"})
    assert status == 504 and reply["error"]["status"] == "DEADLINE_EXCEEDED"
    connection = connect(server)
    status, reply = post(connection, b'{"seed": 4}', {"grpc-timeout": "30S"})
    assert status == 200
    status, reply = post(connection, b'{"seed": 4}', {"grpc-timeout": "soon"})
    assert status == 400 and reply["error"]["details"][0]["fieldViolations"][0]["field"] == "grpc-timeout"
    connection.close()


def test_kept_alive_connections_carry_large_bodies_one_after_another(
    traced: tuple[ServerThread, InMemorySpanExporter],
) -> None:
    server, _ = traced
    body = b'{"seed": 4}' + b" " * (600 * 1024)  # each sent in one write: the head in the same read
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    request = (b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % (GENERATE_PATH.encode(), len(body))) + body
    with socket.create_connection((host, int(port)), timeout=60) as raw:
        reader = raw.makefile("rb")
        for _ in range(4):
            raw.sendall(request)
            status = reader.readline()
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            assert status.startswith(b"HTTP/1.1 200"), status


@pytest.mark.parametrize("pieces", [1, 40])
def test_a_head_over_64_kib_is_refused(traced: tuple[ServerThread, InMemorySpanExporter],
                                       pieces: int) -> None:
    server, _ = traced
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    head = b"GET /v1/plugins HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=60) as raw:
        step = len(head) // pieces + 1
        try:
            for start in range(0, len(head), step):  # in one write, or in reads of their own
                raw.sendall(head[start:start + step])
                time.sleep(0.01 if pieces > 1 else 0)
        except ConnectionError:
            pass  # refused before the rest was sent
        reply = raw.recv(65536)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]


def test_past_the_connection_limit_requests_are_told_to_retry() -> None:
    with ServerThread(settings(http_max_connections=4)) as server, ExitStack() as stack:
        held = [connect(server) for _ in range(5)]
        for connection in held:
            stack.callback(connection.close)
            connection.connect()
        extra = held.pop()
        extra.request("GET", "/v1/plugins")
        reply = extra.getresponse()
        body = json.loads(reply.read())
        assert reply.status == 503 and body["error"]["status"] == "UNAVAILABLE"
        assert reply.getheader("Retry-After") == "1" and reply.getheader("Connection") == "close"
        held[0].request("GET", "/v1/plugins")
        assert held[0].getresponse().status == 200


def test_mutual_tls_over_http(tmp_path: Path) -> None:
    made = make_pki()
    paths = made.write(tmp_path)
    secured = settings(tls_cert=str(paths["server_cert"]), tls_key=str(paths["server_key"]),
                       tls_client_ca=str(paths["ca_cert"]))
    with ServerThread(secured) as server:
        trusted = ssl.create_default_context(cadata=made.ca.cert.decode())
        with pytest.raises((ssl.SSLError, ConnectionError)):
            anonymous = connect(server, trusted)
            anonymous.request("GET", "/v1/plugins")
            anonymous.getresponse()
        trusted.load_cert_chain(paths["client_cert"], paths["client_key"])
        connection = connect(server, trusted)
        status, reply = post(connection, b'{"seed": 4}')
        assert status == 200 and reply["artifacts"]
        connection.close()


def test_a_slow_reader_that_keeps_reading_gets_the_whole_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    from museforge.gateway import http_protocol
    from tests.core.test_stream_backpressure import Plugin
    from tests.servers import inline_engine

    # Shortened for the test: a reply whose client takes no byte for 0.5 s ends its connection;
    # one that takes a little at a time, as a thin line does, goes on (before: cut at 0.5 s).
    monkeypatch.setattr(http_protocol, "IDLE_SECONDS", 0.5)
    monkeypatch.setattr(http_protocol, "DRAIN_CHECK_SECONDS", 0.1)
    engine = inline_engine(("noise", Plugin()), http_address="127.0.0.1:0")
    body = b'{"count": 3, "seed": 1}'
    request = (b"POST /v1/generators/test.noise:stream HTTP/1.1\r\nHost: localhost\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    with ServerThread(engine.settings, engine) as server:
        assert server.running is not None and server.running.gateway is not None
        host, port = server.running.gateway.address.rsplit(":", 1)
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            client.settimeout(30)
            client.connect((host, int(port)))
            client.sendall(request)
            received = b""
            while not received.endswith(b"0\r\n\r\n"):  # the chunked reply's end
                time.sleep(0.02)  # ~1 MB lines, 16 KiB at a time: each takes over a second to read
                chunk = client.recv(16384)
                if not chunk:
                    break
                received += chunk
        lines = [line for line in received.split(b"\r\n") if line.startswith(b'{"result"')]
        assert sum(b'"artifact"' in line for line in lines) == 3, len(received)


def test_a_stream_still_running_when_the_server_stops_ends_with_an_error_line() -> None:
    import museforge
    from tests.core.test_limits_and_faults import NoParams
    from tests.servers import inline_engine

    def lingers(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
        yield museforge.Media("image", np.zeros((4, 4), np.float32), 0)
        while True:  # longer than the server's grace; stops when cancelled
            ctx.check_cancelled()
            time.sleep(0.01)

    class Lingering:
        @museforge.hookimpl
        def register_generators(self, register: Any) -> None:
            register(museforge.Generator("test.lingers", "image", NoParams, lingers, ("png",), max_count=2))

    engine = inline_engine(("lingering", Lingering()), http_address="127.0.0.1:0")
    server = ServerThread(engine.settings, engine).__enter__()
    stopped = False
    try:
        assert server.running is not None and server.running.gateway is not None
        host, port = server.running.gateway.address.rsplit(":", 1)
        body = b'{"count": 2}'
        with socket.create_connection((host, int(port)), timeout=30) as client:
            client.sendall(b"POST /v1/generators/test.lingers:stream HTTP/1.1\r\nHost: localhost\r\n"
                           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            received = b""
            while b'"artifact"' not in received:
                received += client.recv(65536)
            server.__exit__(None, None, None)  # stops with a 0.5 s grace; the stream runs on past it
            stopped = True
            while chunk := client.recv(65536):
                received += chunk
    finally:
        if not stopped:
            server.__exit__(None, None, None)
    last = [line for line in received.split(b"\r\n") if line.startswith(b"{")][-1]
    assert json.loads(last)["error"]["status"] == "UNAVAILABLE", last


def test_a_client_that_half_closes_after_its_request_still_gets_the_reply() -> None:
    with ServerThread(settings()) as server:
        assert server.running is not None and server.running.gateway is not None
        host, port = server.running.gateway.address.rsplit(":", 1)
        body = b'{"seed": 1}'
        for request in (b"POST " + GENERATE_PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                        b"GET /v1/jobs?pageSize=5 HTTP/1.1\r\nHost: localhost\r\n\r\n"):
            with socket.create_connection((host, int(port)), timeout=30) as client:
                client.sendall(request)
                client.shutdown(socket.SHUT_WR)  # done sending: not gone (before: no reply at all)
                received = b""
                while chunk := client.recv(65536):
                    received += chunk
            assert received.startswith(b"HTTP/1.1 200") or received.startswith(b"HTTP/1.1 4"), received[:80]
            assert b"Connection: close" in received.split(b"\r\n\r\n")[0], received[:300]


def test_a_call_refused_for_its_key_over_http_is_traced_as_over_grpc(tmp_path: Path) -> None:
    """The gateway refuses a missing key before the body is read, so before the interceptors: it was
    counted in the metrics but no span was exported, where the same refusal over gRPC had one."""
    from tests.core.jobs_helpers import key_file

    keys, _ = key_file(tmp_path, {"ann": ["generate"]})
    exporter = InMemorySpanExporter()
    with ServerThread(settings(auth=True, api_keys_file=str(keys), data_dir=str(tmp_path)),
                      span_exporter=exporter) as server:
        connection = connect(server)
        status, reply = post(connection, b'{"seed": 4}', {"traceparent": TRACEPARENT})
        assert status == 401 and reply["error"]["status"] == "UNAUTHENTICATED"
        connection.close()
        spans = [s for s in exporter.get_finished_spans() if s.context and s.context.trace_id == TRACE_ID]
    [span] = spans
    assert span.name == "museforge.v1.Museforge/Generate"
    assert span.parent is not None and span.parent.is_remote
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == 16  # UNAUTHENTICATED
    assert span.status.description is not None and "missing API key" in span.status.description

"""X-Request-Id on the gateway's own refusals, those the HTTP layer makes before a request reaches
the routes included (the parser's 400s, the 431), and their standard reason phrases."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from museforge.config import Settings
from museforge.server.auth import KeyFile
from tests.servers import ServerThread

GENERATE = b"/v1/generators/image.digits:generate"
ORIGIN = "https://tools.example"
ID = b"X-Request-Id: abc-123\r\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, bytes]]:
    path = tmp_path_factory.mktemp("request-ids") / "keys"
    key, _ = KeyFile(path).create("generate", ["generate"])
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"], auth=True,
                        api_keys_file=str(path), http_max_body_bytes=2048, http_cors_origins=[ORIGIN])
    with ServerThread(settings) as running:
        yield running, b"Authorization: Bearer %b\r\n" % key.encode()


def exchange(server: ServerThread, *parts: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """Send ``parts`` on one connection (a short pause between them, so they arrive as separate
    reads) and read until the server closes; the last reply's status line and headers."""
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    chunks = []
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        for index, part in enumerate(parts):
            if index:
                time.sleep(0.3)
            connection.sendall(part)
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := connection.recv(65536):
                chunks.append(chunk)
    data = b"".join(chunks)
    head = data[data.rindex(b"HTTP/1.1 "):].split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return head[0], headers


def head(verb: bytes, path: bytes, *lines: bytes, key: bytes = b"") -> bytes:
    """A request's head with the id (and ``key``), closing the connection after its reply."""
    return b"%b %b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%b%b%b\r\n" % (
        verb, path, ID, key, b"".join(lines))


JSON = b"Content-Type: application/json\r\n"
BIG = b"X-Big: " + b"a" * (70 * 1024) + b"\r\n"
PREFLIGHT = b"Access-Control-Request-Method: POST\r\n"
KEYED, KEYLESS = True, False
# (what, with the key?, method, path, header lines, body, the status line): each request carries
# X-Request-Id before what is refused, so the id was read whole.
REFUSALS = [
    ("head too large", KEYED, b"GET", b"/v1/plugins", [BIG], b"", b"431 Request Header Fields Too Large"),
    ("two Content-Lengths", KEYED, b"POST", GENERATE,
     [JSON, b"Content-Length: 2\r\n", b"Content-Length: 3\r\n"], b"{}", b"400 Bad Request"),
    ("Content-Length not a number", KEYED, b"POST", GENERATE, [JSON, b"Content-Length: abc\r\n"], b"",
     b"400 Bad Request"),
    ("body too large", KEYED, b"POST", GENERATE, [JSON, b"Content-Length: 4096\r\n"], b"x" * 4096,
     b"413 Content Too Large"),
    ("stray body on a GET", KEYED, b"GET", b"/v1/plugins", [b"Content-Length: 70000\r\n"], b"",
     b"413 Content Too Large"),
    ("wrong method", KEYED, b"GET", GENERATE, [], b"", b"405 Method Not Allowed"),
    ("chunked", KEYED, b"POST", GENERATE, [JSON, b"Transfer-Encoding: chunked\r\n"], b"2\r\n{}\r\n0\r\n\r\n",
     b"411 Length Required"),
    ("not JSON", KEYED, b"POST", GENERATE, [b"Content-Type: text/plain\r\n", b"Content-Length: 2\r\n"], b"{}",
     b"415 Unsupported Media Type"),
    ("compressed", KEYED, b"POST", GENERATE, [JSON, b"Content-Encoding: gzip\r\n", b"Content-Length: 2\r\n"],
     b"{}", b"415 Unsupported Media Type"),
    ("no key", KEYLESS, b"POST", GENERATE, [JSON, b"Content-Length: 2\r\n"], b"{}", b"401 Unauthorized"),
    ("unknown key", KEYLESS, b"GET", b"/openapi.json", [b"Authorization: Bearer nope\r\n"], b"",
     b"401 Unauthorized"),
    ("no route", KEYED, b"GET", b"/v1/nothing", [], b"", b"404 Not Found"),
    ("bad JSON", KEYED, b"POST", GENERATE, [JSON, b"Content-Length: 3\r\n"], b"{x}", b"400 Bad Request"),
    ("preflight", KEYLESS, b"OPTIONS", GENERATE, [f"Origin: {ORIGIN}\r\n".encode(), PREFLIGHT], b"",
     b"204 No Content"),
    ("preflight from elsewhere", KEYLESS, b"OPTIONS", GENERATE,
     [b"Origin: https://elsewhere.example\r\n", PREFLIGHT], b"", b"403 Forbidden"),
]


@pytest.mark.parametrize(("what", "keyed", "verb", "path", "lines", "body", "status"), REFUSALS,
                         ids=[r[0] for r in REFUSALS])
def test_every_refusal_echoes_the_request_id_under_its_standard_reason(
    served: tuple[ServerThread, bytes], what: str, keyed: bool, verb: bytes, path: bytes,
    lines: list[bytes], body: bytes, status: bytes,
) -> None:
    server, key = served
    line, headers = exchange(server, head(verb, path, *lines, key=key if keyed else b"") + body)
    assert line == b"HTTP/1.1 " + status, what
    assert headers.get(b"x-request-id") == b"abc-123", (what, headers)


def test_a_head_over_the_limit_in_several_reads_echoes_the_id_read_before_it(
    served: tuple[ServerThread, bytes],
) -> None:
    server, key = served
    start = b"GET /v1/plugins HTTP/1.1\r\nHost: localhost\r\n" + ID + key + b"X-Big: "
    line, headers = exchange(server, start, b"a" * 40_000, b"a" * 40_000)  # never a whole head
    assert line == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert headers.get(b"x-request-id") == b"abc-123"


def test_an_id_a_reply_cannot_carry_back_is_left_out(served: tuple[ServerThread, bytes]) -> None:
    server, key = served
    start = b"GET /v1/plugins HTTP/1.1\r\nHost: localhost\r\n" + key
    for value in (b"caf\xe9", b"a" * (65 * 1024)):  # not ASCII; longer than a served head may be
        line, headers = exchange(server, start + b"X-Request-Id: " + value + b"\r\n" + BIG + b"\r\n")
        assert line.startswith(b"HTTP/1.1 431 ") and b"x-request-id" not in headers
    # Bytes refused after a served request are not that request's: its id is not echoed.
    line, headers = exchange(server, start + ID + b"\r\n", b"\x01 / HTTP/1.1\r\n\r\n")
    assert line == b"HTTP/1.1 400 Bad Request" and b"x-request-id" not in headers


def test_a_served_request_echoes_its_id(served: tuple[ServerThread, bytes]) -> None:
    """The key works (so the refusals above are for what they name), and the id comes back."""
    server, key = served
    line, headers = exchange(server, head(b"GET", b"/v1/plugins", key=key))
    assert line == b"HTTP/1.1 200 OK" and headers.get(b"x-request-id") == b"abc-123"

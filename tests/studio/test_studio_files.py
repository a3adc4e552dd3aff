"""The studio's files as the gateway serves them: the page at /, its assets, strict headers, no other
path; and the page's own origin allowed to call, a foreign one not (no browser needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from museforge.config import Settings
from tests.core.test_gateway import Http
from tests.servers import ServerThread


def settings(**extra: object) -> Settings:
    return Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"], **extra)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(settings()) as running:
        yield running


def test_the_page_and_its_files_with_strict_headers(server: ServerThread) -> None:
    web = Http(server)
    status, headers, body = web.request("GET", "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert b"<title>museforge studio</title>" in body and b"http" not in body.split(b"<body>")[0].lower()
    policy = headers["content-security-policy"]
    for rule in ("default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"):
        assert rule in policy
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    status, headers, body = web.request("GET", "/studio/studio.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert b"/v1/generators" in body
    for missing in ("/studio/../config.py", "/studio/nothing.js", "/studio/", "/studio/studio_files.py"):
        assert web.request("GET", missing)[0] == 404, missing


def test_the_pages_own_origin_may_call_and_a_foreign_one_may_not(server: ServerThread) -> None:
    assert server.running is not None and server.running.gateway is not None
    own = f"http://{server.running.gateway.address}"
    web = Http(server)
    status, _, _ = web.request("GET", "/v1/generators", headers={"Origin": own})
    assert status == 200
    status, _, body = web.request("GET", "/v1/generators", headers={"Origin": "http://evil.example"})
    assert status == 403 and b"may not call this server" in body


def test_the_studio_can_be_turned_off() -> None:
    with ServerThread(settings(http_studio=False)) as server:
        assert Http(server).request("GET", "/")[0] == 404

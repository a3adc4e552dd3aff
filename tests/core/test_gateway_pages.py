"""What web pages and generated clients need of the gateway, against a real server: links from
other local pages open, a page reads the headers it is given, the OpenAPI document says what the
server takes, and an unknown health service is explained."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import BaseModel

import museforge
from museforge.gateway.openapi import openapi_document
from tests.core.test_gateway import Http
from tests.servers import ServerThread, inline_engine

LISTED = "http://localhost:5173"  # a dev server's page, listed in http_cors_origins
NAVIGATION = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


class NoParams(BaseModel):
    pass


def grey(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    for index in range(count):
        yield museforge.Media("image", np.full((4, 4, 3), 0.5, np.float32), index)


def raises(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    raise RuntimeError("the plugin's own bug")
    yield  # pragma: no cover


class Plugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.grey", "image", NoParams, grey, ("png",)))
        register(museforge.Generator("test.raises", "image", NoParams, raises, ("png",)))


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    engine = inline_engine(("pages", Plugin()), http_address="127.0.0.1:0", http_cors_origins=[LISTED])
    with ServerThread(engine.settings, engine) as running:
        yield running


@pytest.fixture()
def web(server: ServerThread) -> Iterator[Http]:
    client = Http(server)
    yield client
    client.close()


@pytest.mark.parametrize("site", ["same-site", "cross-site"])
def test_a_link_from_another_page_opens_the_studio_and_the_document(web: Http, site: str) -> None:
    followed = {**NAVIGATION, "Sec-Fetch-Site": site}  # browsers send no Origin on a followed link
    status, headers, page = web.request("GET", "/", headers=followed)
    assert status == 200 and headers["content-type"].startswith("text/html") and b"<html" in page.lower()
    status, _, _ = web.request("GET", "/openapi.json", headers=followed)
    assert status == 200
    status, _, _ = web.request("HEAD", "/v1/health", headers=followed)
    assert status == 200


@pytest.mark.parametrize("changed", [{"Sec-Fetch-Dest": "iframe"}, {"Sec-Fetch-Mode": "cors"},
                                     {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty"}])
def test_frames_and_fetches_from_other_sites_still_need_an_allowed_origin(web: Http,
                                                                          changed: dict[str, str]) -> None:
    status, reply = web.json("GET", "/v1/plugins", headers={**NAVIGATION, **changed})
    assert status == 403 and reply["error"]["details"][0]["fieldViolations"][0]["field"] == "Sec-Fetch-Site"


def test_a_form_posted_from_another_site_is_still_refused(web: Http) -> None:
    # A form's POST is a navigation too; the browser sends its Origin, which is not listed.
    posted = {**NAVIGATION, "Sec-Fetch-Site": "cross-site", "Origin": "http://localhost:9999"}
    status, reply = web.json("POST", "/v1/generators/test.grey:generate", {}, headers=posted)
    assert status == 403 and reply["error"]["status"] == "PERMISSION_DENIED"
    del posted["Origin"]  # and one that somehow came without it: still no POST from a foreign page
    status, reply = web.json("POST", "/v1/generators/test.grey:generate", {}, headers=posted)
    assert status == 403


def test_a_page_reads_allow_www_authenticate_and_its_request_id(web: Http) -> None:
    status, headers, _ = web.request("GET", "/v1/jobs/abc:cancel", headers={"Origin": LISTED,
                                                                           "X-Request-Id": "req-405"})
    assert status == 405 and headers["allow"] == "POST" and headers["x-request-id"] == "req-405"
    exposed = {h.strip().lower() for h in headers["access-control-expose-headers"].split(",")}
    assert {"allow", "www-authenticate", "x-request-id", "retry-after"} <= exposed
    status, headers, _ = web.request("POST", "/v1/generators/test.grey:generate", {},
                                     headers={"X-Request-Id": "req-ok"})
    assert status == 200 and headers["x-request-id"] == "req-ok"
    status, headers, _ = web.request("GET", "/v1/plugins")
    assert status == 200 and "x-request-id" not in headers


def test_a_failed_calls_request_id_is_in_the_server_log(web: Http, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="museforge.service"):
        status, reply = web.json("POST", "/v1/generators/test.raises:generate", {},
                                 headers={"X-Request-Id": "page-7f3a"})
    assert status == 500 and reply["error"]["status"] == "INTERNAL"
    found = re.search(r"correlation id ([0-9a-f]{12})", reply["error"]["message"])
    assert found is not None
    lines = [r.getMessage() for r in caplog.records if found.group(1) in r.getMessage()]
    assert any("page-7f3a" in line for line in lines), lines  # the service's line; the traceback's is first


def schema_of(document: dict[str, Any], name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", **document})


def test_the_document_says_what_the_server_takes_and_gives(web: Http) -> None:
    document = openapi_document()
    validate(document)
    # 64-bit integers: a number or a string in a request (the docs' own {"seed": 42}), a string in a reply.
    body = {"seed": 42, "count": 1}
    schema_of(document, "museforge.v1.GenerateRequest").validate(body)
    schema_of(document, "museforge.v1.GenerateRequest").validate({"seed": "42"})
    assert not schema_of(document, "museforge.v1.GenerateRequest").is_valid({"seed": -1})
    status, reply = web.json("POST", "/v1/generators/test.grey:generate", body)
    assert status == 200 and reply["seed"] == "42"
    schema_of(document, "museforge.v1.GenerateResponse").validate(reply)
    assert not schema_of(document, "museforge.v1.GenerateResponse").is_valid({"seed": 42})
    # A message both sent and answered (an event's artifact) has a request form of its own.
    event = {"event": {"kind": "FEEDBACK_KIND_THUMBS", "thumb": "THUMB_UP",
                       "artifact": {"generator": "test.grey", "seed": 42}}}
    schema_of(document, "museforge.v1.RecordFeedbackRequest").validate(event)
    assert not schema_of(document, "museforge.v1.ArtifactRef").is_valid({"seed": 42})


def test_every_post_body_is_required_as_the_server_requires_it(web: Http) -> None:
    document = openapi_document()
    assert "Content-Type: application/json" in document["info"]["description"]
    bodies = [op["requestBody"] for path in document["paths"].values() for verb, op in path.items()
              if verb == "post"]
    assert bodies and all(b["required"] and "Content-Type: application/json" in b["description"]
                          for b in bodies)
    status, reply = web.json("POST", "/v1/jobs/abc:cancel")  # what the document forbids...
    assert status == 415 and "Content-Type must be application/json" in reply["error"]["message"]
    status, reply = web.json("POST", "/v1/jobs/abc:cancel", {})  # ...and what it asks for instead
    assert status == 404 and reply["error"]["message"] == "no job 'jobs/abc'"


def test_an_unknown_health_service_is_explained(web: Http) -> None:
    status, reply = web.json("GET", "/v1/health?service=museforge.model/image.digts")
    assert status == 404 and reply["error"]["status"] == "NOT_FOUND"
    message = reply["error"]["message"]
    assert "no health service 'museforge.model/image.digts'" in message and "museforge.plugin/NAME" in message
    status, reply = web.json("GET", "/v1/health?service=museforge.plugin/pages")
    assert status == 200 and reply["status"] == "SERVING"

"""JSON the gateway once took loosely: enums as floats or booleans, a key or a field given twice,
a query name echoed back whole, integers in other scripts' digits. Each is refused naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from museforge.config import Settings
from tests.core.test_gateway import Http, violations
from tests.servers import ServerThread

SHA = "ab" * 32


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Http]:
    data = tmp_path_factory.mktemp("strict-json")
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"],
                        data_dir=str(Path(data)))
    with ServerThread(settings) as running:
        connection = Http(running)
        yield connection
        connection.close()


def thumbs(**event: object) -> dict[str, object]:
    return {"event": {"user": "ann", "kind": "FEEDBACK_KIND_THUMBS", "thumb": "THUMB_UP",
                      "artifact": {"sha256": SHA, "generator": "image.digits"}, **event}}


@pytest.mark.parametrize(("field", "value"), [("kind", 1.9), ("kind", True), ("thumb", " 2"), ("thumb", 2.7),
                                              ("kind", []), ("kind", {"a": 1})])
def test_an_enum_is_its_name_or_its_number(http: Http, field: str, value: object) -> None:
    status, reply = http.json("POST", "/v1/feedback", thumbs(**{field: value}))
    assert status == 400 and violations(reply) == [f"event.{field}"], reply
    assert "an enum is its name or its number" in reply["error"]["message"]


def test_an_enum_by_name_or_number_is_taken(http: Http) -> None:
    status, reply = http.json("POST", "/v1/feedback", thumbs(kind=1, thumb="THUMB_UP"))
    assert status == 200 and reply["kind"] == "FEEDBACK_KIND_THUMBS", reply
    status, reply = http.json("GET", "/v1/feedback:recommend?user=ann&kind=1")
    assert status == 200, reply


def test_a_key_or_a_field_given_twice_is_refused(http: Http) -> None:
    body = (b'{"event": {"user": "ann", "user": "mallory", "kind": "FEEDBACK_KIND_KEEP", '
            b'"artifact": {"sha256": "' + SHA.encode() + b'", "generator": "image.digits"}}}')
    status, _, payload = http.request("POST", "/v1/feedback", raw=body)
    assert status == 400 and b"'user' is given twice in one object" in payload
    event = thumbs()["event"]
    assert isinstance(event, dict)
    artifact = {**event["artifact"], "model_version": "1", "modelVersion": "2"}
    status, reply = http.json("POST", "/v1/feedback", {"event": {**event, "artifact": artifact}})
    assert status == 400 and violations(reply) == ["event.artifact.model_version"], reply
    status, reply = http.json("GET", "/v1/feedback?user=ann&page_size=1&pageSize=1000")
    assert status == 400 and "given twice (as 'page_size' and 'pageSize')" in reply["error"]["message"]


@pytest.mark.parametrize("quoted", ["1_0", "%D9%A3", "%2B3", "3.0"])  # %D9%A3: Arabic-Indic 3
def test_a_whole_number_in_the_query_is_ascii_digits(http: Http, quoted: str) -> None:
    status, reply = http.json("GET", f"/v1/feedback?user=ann&pageSize={quoted}")
    assert status == 400 and violations(reply) == ["pageSize"], reply


def test_a_body_is_utf_8(http: Http) -> None:
    body = '{"event": {"user": "a\ud800b"}}'.encode("utf-16-le", "surrogatepass")
    status, _, payload = http.request("POST", "/v1/feedback", raw=body)
    assert status == 400 and b"not valid JSON" in payload
    status, reply = http.json("POST", "/v1/generators/image.digits:generate",
                              raw=b'\xef\xbb\xbf{"seed": 3}')  # a BOM, as some Windows tools write
    assert status == 200, reply


def test_the_gateways_own_errors_are_clipped_like_the_services(http: Http) -> None:
    status, _, payload = http.request("GET", "/v1/generators?" + "a" * 10_000 + "=1")
    assert status == 400 and len(payload) < 2_500, len(payload)
    status, _, payload = http.request("POST", "/v1/generators/image.digits:generate",
                                      {"x" * 20_000: 1})
    assert status == 400 and len(payload) < 2_500, len(payload)


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"seed": -5}, "seed", "must be a whole number from 0 to 18446744073709551615, got -5"),
    ({"event": {"stars": "many"}}, "event.stars", 'must be a whole number from 0 to 4294967295, got "many"'),
])
def test_a_field_that_does_not_parse_is_named_once(http: Http, body: dict[str, object], field: str,
                                                   reason: str) -> None:
    """The violation says what is wrong; its field names where (a form shows it under that field),
    so neither repeats the field nor json_format's 'Failed to parse ... field' chain."""
    path = "/v1/feedback" if "event" in body else "/v1/generators/image.digits:generate"
    status, reply = http.json("POST", path, body)
    assert status == 400 and violations(reply) == [field], reply
    [violation] = reply["error"]["details"][0]["fieldViolations"]
    assert reason in violation["description"], violation
    assert "Failed to parse" not in violation["description"] and field not in violation["description"]
    assert reply["error"]["message"] == f"{field}: {violation['description']}"


@pytest.mark.parametrize(("path", "body", "field", "reason"), [
    ("/v1/feedback", {"event": {"stars": "five"}}, "event.stars",
     'must be a whole number from 0 to 4294967295, got "five"'),
    ("/v1/feedback", {"event": {"stars": 4.5}}, "event.stars", "number from 0 to 4294967295, got 4.5"),
    ("/v1/feedback", {"event": {"stars": True}}, "event.stars", "number from 0 to 4294967295, got true"),
    ("/v1/feedback", {"event": {"user": 5}}, "event.user", "must be a string, got 5"),
    ("/v1/feedback", {"event": "x"}, "event", 'must be a JSON object, got "x"'),
    ("/v1/feedback", {"event": {"artifact": [1]}}, "event.artifact", "must be a JSON object, got [1]"),
    ("/v1/effects/effect.denoise:apply", {"inputs": [{"name": "a.png"}, {"name": 7}]}, "inputs[1].name",
     "must be a string, got 7"),
    ("/v1/effects/effect.denoise:apply", {"inputs": {"name": "a.png"}}, "inputs",
     'must be a JSON list (each item a JSON object), got {"name": "a.png"}'),
    ("/v1/effects/effect.denoise:apply", {"inputs": [{"data": 12}]}, "inputs[0].data",
     "must be base64 text, got 12"),
    ("/v1/generators/image.digits:generate", {"count": "2x"}, "count",
     'must be a whole number from 0 to 4294967295, got "2x"'),
    ("/v1/generators/image.digits:generate", {"parameters": "x"}, "parameters",
     'must be a JSON object, got "x"'),
    ("/v1/generators/image.digits:generate", {"sed": 3}, "sed",
     "unknown field 'sed': did you mean 'seed'? this object takes generator, parameters, seed, count"),
    ("/v1/feedback", {"event": {"artifact": {"shaa256": "ab"}}}, "event.artifact.shaa256",
     "did you mean 'sha256'?"),
    ("/v1/jobs/nothing:wait", {"timeout": 10}, "timeout", 'must be a duration string such as "10s"'),
])
def test_a_value_of_the_wrong_kind_is_refused_saying_what_the_field_takes(
        http: Http, path: str, body: dict[str, object], field: str, reason: str) -> None:
    """Not in the JSON parser's own words ("invalid literal for int() with base 10: 'five'..",
    "Bool value True is not acceptable for integer field", an object read as a field named "x")."""
    status, reply = http.json("POST", path, body)
    assert status == 400 and violations(reply) == [field], reply
    [violation] = reply["error"]["details"][0]["fieldViolations"]
    assert reason in violation["description"], violation
    parser_words = ("int()", "literal", "parse", "..")
    assert not any(word in violation["description"] for word in parser_words), violation


def test_values_the_parser_reads_are_still_taken(http: Http) -> None:
    """What proto3 JSON allows stays allowed: whole numbers written 4.0 or as strings, floats as
    strings, null for a field's default."""
    status, reply = http.json("POST", "/v1/generators/image.digits:generate",
                              {"seed": "7", "count": 1.0, "parameters": None})
    assert status == 200, reply


def test_a_reply_holds_every_field_a_struct_too(http: Http) -> None:
    """An unset Struct (an artifact's ``parameters``) was left out of the reply, so readers that need
    every key (Unity's JsonUtility) lacked it; it comes as an empty object."""
    artifact = {"sha256": SHA, "generator": "image.digits"}
    status, reply = http.json("POST", "/v1/feedback", {"event": {
        "user": "ann", "kind": "FEEDBACK_KIND_KEEP", "artifact": artifact}})
    assert status == 200, reply
    assert reply["artifact"]["parameters"] == {}, reply
    status, listed = http.json("GET", "/v1/feedback?user=ann")
    assert status == 200 and all(e["artifact"]["parameters"] is not None for e in listed["events"]), listed

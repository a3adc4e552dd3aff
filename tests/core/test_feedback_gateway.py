"""Feedback over the HTTP/JSON gateway, with auth on: the same calls, keys and errors as gRPC."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format

from museforge.client import Client, artifact_ref, feedback_event
from museforge.config import Settings
from museforge.server.auth import KeyFile
from tests.core.feedback_helpers import made_artifacts, one_of_each
from tests.core.test_gateway import Http, violations
from tests.servers import ServerThread

Keys = tuple[Path, dict[str, str]]  # the keys file and each key by its name


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    path = tmp_path_factory.mktemp("gateway-keys") / "api_keys.json"
    store = KeyFile(path)
    return path, {name: store.create(name, ["generate"])[0] for name in ("studio", "rival")}


@pytest.fixture(scope="module")
def server(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"], auth=True,
                        api_keys_file=str(keys[0]), data_dir=str(tmp_path_factory.mktemp("gateway-data")))
    with ServerThread(settings) as running:
        yield running


def test_record_list_export_and_forget_over_http(server: ServerThread, keys: Keys) -> None:
    made = keys[1]
    with Client(server.address, timeout=30, api_key=made["studio"]) as client:
        events = [json_format.MessageToDict(e) for e in one_of_each(made_artifacts(client), "ann")]
    studio, rival = Http(server, made["studio"]), Http(server, made["rival"])
    try:
        recorded = []
        for event in events:
            status, reply = studio.json("POST", "/v1/feedback", {"event": event})
            assert status == 200, reply
            recorded.append(reply)
        assert [r["kind"] for r in recorded] == ["FEEDBACK_KIND_THUMBS", "FEEDBACK_KIND_STARS",
                                                 "FEEDBACK_KIND_PICK", "FEEDBACK_KIND_KEEP"]
        status, listed = studio.json("GET", "/v1/feedback?user=ann&pageSize=10")
        assert status == 200 and listed["events"] == recorded
        status, lines = studio.json("GET", "/v1/feedback:export?user=ann")
        assert status == 200 and [line["result"] for line in lines] == recorded
        # Another key's "ann" is not this one's.
        status, reply = rival.json("GET", "/v1/feedback?user=ann")
        assert status == 404 and reply["error"]["status"] == "NOT_FOUND"
        status, reply = rival.json("POST", "/v1/feedback:forget", {"user": "ann"})
        assert status == 404
        bad = {**events[1], "stars": 9}
        status, reply = studio.json("POST", "/v1/feedback", {"event": bad})
        assert status == 400 and violations(reply) == ["event.stars"]
        # What the JSON parser refuses names its path too, not only the outer field.
        for wrong in ({"stars": 2.5}, {"thumb": "THUMB_SIDEWAYS"}, {"artifact": {"seed": "-1"}}):
            status, reply = studio.json("POST", "/v1/feedback", {"event": {**events[1], **wrong}})
            field = "event." + ("artifact.seed" if "artifact" in wrong else next(iter(wrong)))
            assert status == 400 and violations(reply) == [field], reply
        # Recommendations from the studio's own users only; a bad kind names the field.
        artifacts = "/v1/feedback:recommend?user=newcomer&kind=RECOMMEND_KIND_ARTIFACTS"
        status, reply = studio.json("GET", artifacts + "&k=2")
        assert status == 200, reply
        assert len(reply["recommendations"]) == 2 and reply["eventsUsed"] == "4"
        assert all(r["artifact"]["generator"] == "image.digits" and r["reason"]
                   for r in reply["recommendations"])
        status, reply = rival.json("GET", artifacts)
        assert status == 200 and reply.get("recommendations", []) == []
        status, reply = studio.json("GET", "/v1/feedback:recommend?user=ann&k=2")
        assert status == 400 and violations(reply) == ["kind"]
        status, reply = studio.json("POST", "/v1/feedback:forget", {"user": "ann"})
        assert status == 200 and reply == {"deleted": "4"}  # int64: a string in proto3 JSON
    finally:
        studio.close()
        rival.close()


def test_the_routes_are_in_the_openapi_document(server: ServerThread, keys: Keys) -> None:
    web = Http(server, keys[1]["studio"])
    try:
        status, document = web.json("GET", "/openapi.json")
    finally:
        web.close()
    assert status == 200
    paths = document["paths"]
    assert set(paths["/v1/feedback"]) == {"get", "post"}
    assert paths["/v1/feedback:export"]["get"]["operationId"] == "Feedback_ExportFeedback"
    assert "application/x-ndjson" in paths["/v1/feedback:export"]["get"]["responses"]["200"]["content"]
    assert paths["/v1/feedback:forget"]["post"]["operationId"] == "Feedback_ForgetUser"
    assert paths["/v1/feedback:recommend"]["get"]["operationId"] == "Feedback_Recommend"
    assert "museforge.v1.FeedbackEvent" in document["components"]["schemas"]


def test_generation_over_http_is_steered_by_the_keys_own_user(server: ServerThread, keys: Keys) -> None:
    made = keys[1]
    with Client(server.address, timeout=60, api_key=made["studio"]) as client:
        faces = client.generate("image.faces", {"size": 32}, seed=31, count=4).artifacts
        for face, thumb in zip(faces, ("up", "up", "down", "down"), strict=True):
            client.record_feedback(feedback_event("thumbs", artifact_ref(face), user="dee", thumb=thumb))
    studio, rival = Http(server, made["studio"]), Http(server, made["rival"])
    body = {"parameters": {"size": 32, "preference": "dee"}, "seed": "5", "count": 2}
    try:
        status, reply = studio.json("POST", "/v1/generators/image.faces:generate", body)
        assert status == 200, reply
        # The studio's dee rated four faces; the rival key's dee is nobody yet.
        note = json.loads(reply["artifacts"][0]["metadata"]["steering"])
        assert note["preference"] == "dee" and note["rated"] == 4 and note["candidates"] >= 4
        status, reply = rival.json("POST", "/v1/generators/image.faces:generate", body)
        assert status == 200
        assert "no ratings" in json.loads(reply["artifacts"][0]["metadata"]["steering"])["how"]
        status, reply = rival.json("POST", "/v1/generators/image.faces:generate",
                                   {**body, "parameters": {"size": 32, "preference": ""}})
        assert status == 400 and violations(reply) == ["parameters.preference"]
    finally:
        studio.close()
        rival.close()

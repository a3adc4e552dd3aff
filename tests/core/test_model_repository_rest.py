"""Triton's model repository extension over the HTTP gateway: index, unload, load, errors, auth."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from museforge.config import Settings
from museforge.plugins.image.digits import MODELS_DIR
from museforge.server.auth import KeyFile
from tests.core.test_gateway import Http
from tests.core.test_model_repository import MODEL, DigitsCopy
from tests.servers import ServerThread, inline_engine

INFER = f"/v2/models/{MODEL}/infer"
BODY = {"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 100], "data": [0.0] * 100},
                   {"name": "label", "datatype": "INT64", "shape": [1], "data": [3]}]}
# An empty body still needs its Content-Type (the gateway asks it of every POST, as a browser
# cannot send it cross-site unasked); tritonclient users pass it in ``headers``.
EMPTY = {"headers": {"Content-Type": "application/json"}}


def serve(directory: Path, **settings: Any) -> ServerThread:
    """A server with a gateway whose one model lives in ``directory``."""
    return ServerThread(Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", **settings),
                        engine=inline_engine(("digits_copy", DigitsCopy(directory))))


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    directory = tmp_path / "digits"
    shutil.copytree(MODELS_DIR / "1", directory / "1")  # the tests write the versions after it
    return directory


@pytest.fixture
def web(copied: Path) -> Iterator[Http]:
    with serve(copied) as server:
        client = Http(server)
        yield client
        client.close()


def test_index_unload_and_load_over_rest(web: Http) -> None:
    ready = {"name": MODEL, "version": "1", "state": "READY", "reason": ""}
    assert web.json("POST", "/v2/repository/index", **EMPTY) == (200, [ready])  # no body: all
    assert web.json("POST", "/v2/repository/index", {"ready": True}) == (200, [ready])
    status, reply = web.json("POST", INFER, BODY)
    assert status == 200 and reply["model_version"] == "1"

    assert web.json("POST", f"/v2/repository/models/{MODEL}/unload", {}) == (200, {})
    status, error = web.json("POST", INFER, BODY)
    assert status == 503 and "unloaded; load it with RepositoryModelLoad" in error["error"]
    status, index = web.json("POST", "/v2/repository/index", {})
    reason = f"it is unloaded; load it with RepositoryModelLoad (`museforge models load {MODEL}`)"
    assert status == 200 and [(m["state"], m["reason"]) for m in index] == [("UNAVAILABLE", reason)]
    assert web.json("POST", "/v2/repository/index", {"ready": True}) == (200, [])
    assert web.json("GET", f"/v2/models/{MODEL}/ready") == (503, {"ready": False})

    assert web.json("POST", f"/v2/repository/models/{MODEL}/load", **EMPTY) == (200, {})
    status, reply = web.json("POST", INFER, BODY)
    assert status == 200 and reply["model_version"] == "1" and reply["outputs"][0]["shape"] == [1, 1, 28, 28]
    assert web.json("POST", "/v2/repository/index", {"ready": True}) == (200, [ready])


def test_unknown_model_and_bad_bodies_are_refused(web: Http) -> None:
    for action in ("load", "unload"):
        status, error = web.json("POST", f"/v2/repository/models/test.nope/{action}", **EMPTY)
        assert status == 404 and "test.nope" in error["error"], error
    status, error = web.json("POST", f"/v2/repository/models/{MODEL}/load",
                             {"parameters": {"config": "{}"}})
    assert status == 400 and "config" in error["error"]  # a parameter museforge does not serve
    # Triton's unload parameter is taken (museforge models have no dependents).
    assert web.json("POST", f"/v2/repository/models/{MODEL}/unload",
                    {"parameters": {"unload_dependents": False}}) == (200, {})
    status, error = web.json("POST", "/v2/repository/index", {"ready": "yes"})
    assert status == 400 and "ready" in error["error"]
    status, error = web.json("POST", "/v2/repository/index", {"repository": "x"})
    assert status == 400 and "repository" in error["error"]
    status, error = web.json("POST", "/v2/repository/index", [])
    assert status == 400 and "JSON object" in error["error"]
    status, error = web.json("GET", "/v2/repository/index")
    assert status == 405


def test_the_repository_routes_need_an_admin_key(copied: Path, tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    store = KeyFile(path)
    made = {scope: store.create(scope, [scope])[0] for scope in ("infer", "admin")}
    with serve(copied, auth=True, api_keys_file=str(path)) as server:
        anonymous, inferer, admin = Http(server), Http(server, made["infer"]), Http(server, made["admin"])
        for route in ("/v2/repository/index", f"/v2/repository/models/{MODEL}/unload"):
            status, error = anonymous.json("POST", route, **EMPTY)
            assert status == 401 and "API key" in error["error"]
            status, error = inferer.json("POST", route, **EMPTY)
            assert status == 403 and "admin" in error["error"], error
        assert inferer.json("POST", INFER, BODY)[0] == 200  # nothing was unloaded
        assert admin.json("POST", f"/v2/repository/models/{MODEL}/unload", **EMPTY) == (200, {})
        assert inferer.json("POST", INFER, BODY)[0] == 503
        assert admin.json("POST", f"/v2/repository/models/{MODEL}/load", **EMPTY) == (200, {})
        assert inferer.json("POST", INFER, BODY)[0] == 200
        for client in (anonymous, inferer, admin):
            client.close()

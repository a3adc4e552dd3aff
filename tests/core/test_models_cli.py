"""``museforge models list|load|unload`` as a user runs it, against a real server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from museforge.config import Settings
from museforge.plugins.image.digits import MODELS_DIR
from museforge.server.auth import KeyFile
from tests.core.test_cli import museforge
from tests.core.test_model_repository import MODEL, DigitsCopy, write_version
from tests.servers import ServerThread, inline_engine


def serve(directory: Path, **settings: Any) -> ServerThread:
    return ServerThread(Settings(address="127.0.0.1:0", **settings),
                        engine=inline_engine(("digits_copy", DigitsCopy(directory))))


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    directory = tmp_path / "digits"
    shutil.copytree(MODELS_DIR / "1", directory / "1")  # the tests write the versions after it
    return directory


@pytest.fixture
def address(copied: Path) -> Iterator[str]:
    with serve(copied) as server:
        yield server.address


def test_list_unload_and_load(address: str) -> None:
    listed = museforge("models", "list", "--server", address, "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"name": MODEL, "version": "1", "state": "READY", "reason": ""}]

    unloaded = museforge("models", "unload", MODEL, "--server", address, "--json")
    assert unloaded.returncode == 0, unloaded.stderr
    assert json.loads(unloaded.stdout)["state"] == "UNAVAILABLE"
    table = museforge("models", "list", "--server", address)
    assert table.returncode == 0 and table.stdout.split("\n")[0].split() == ["MODEL", "VERSION", "STATE",
                                                                             "REASON"]
    assert MODEL in table.stdout and "UNAVAILABLE" in table.stdout and "unloaded" in table.stdout
    ready = museforge("models", "list", "--ready", "--server", address, "--json")
    assert json.loads(ready.stdout) == []

    loaded = museforge("models", "load", MODEL, "--server", address)
    assert loaded.returncode == 0, loaded.stderr
    assert MODEL in loaded.stdout and "READY" in loaded.stdout
    again = museforge("models", "list", "--ready", "--server", address, "--json")
    assert [m["state"] for m in json.loads(again.stdout)] == ["READY"]


def test_errors_are_clear(address: str, copied: Path) -> None:
    unknown = museforge("models", "load", "test.nope", "--server", address)
    assert unknown.returncode == 1 and "unknown model 'test.nope'" in unknown.stderr
    assert unknown.stderr.startswith("museforge: ")
    write_version(copied, 2, b"not an onnx graph")
    broken = museforge("models", "load", MODEL, "--server", address)
    assert broken.returncode == 1 and "model.onnx is not an ONNX model" in broken.stderr
    assert "keeps serving" in broken.stderr
    assert museforge("models", "list", "--server", "127.0.0.1:1").returncode == 3  # no server
    usage = museforge("models", "load", "--server", address)  # no NAME
    assert usage.returncode == 2 and "NAME" in usage.stderr


def test_a_key_without_the_admin_scope_is_told_what_it_needs(copied: Path, tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    store = KeyFile(path)
    infer_key, admin_key = (store.create(scope, [scope])[0] for scope in ("infer", "admin"))
    with serve(copied, auth=True, api_keys_file=str(path)) as server:
        refused = museforge("models", "unload", MODEL, "--server", server.address, "--api-key", infer_key)
        assert refused.returncode == 1 and "admin scope" in refused.stderr, refused.stderr
        missing = museforge("models", "list", "--server", server.address)
        assert missing.returncode == 1 and "admin scope" in missing.stderr
        listed = museforge("models", "list", "--server", server.address, "--json",
                           env={"MUSEFORGE_API_KEY": admin_key})
        assert listed.returncode == 0 and json.loads(listed.stdout)[0]["state"] == "READY"


def test_a_load_shows_every_version_it_serves(copied: Path) -> None:
    write_version(copied, 2, (copied / "1" / "model.onnx").read_bytes())
    engine = inline_engine(("digits_copy", DigitsCopy(copied)), models={MODEL: {"version_policy": "all"}})
    with ServerThread(engine=engine) as server:
        loaded = museforge("models", "load", MODEL, "--server", server.address)
    assert loaded.returncode == 0, loaded.stderr
    rows = [line.split() for line in loaded.stdout.splitlines()[1:] if line.strip()]
    assert [(r[0], r[1], r[2]) for r in rows] == [(MODEL, "1", "READY"), (MODEL, "2", "READY")]

"""A damaged version's load refusal names the file and says what is wrong with it, in words."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

import museforge
from museforge.client import Client, Unavailable
from museforge.inference import grpc_service_pb2_grpc as pb_grpc
from museforge.plugins.image.digits import DIGITS
from museforge.plugins.image.digits import MODELS_DIR as DIGITS_MODELS
from tests.core.test_model_repository import DigitsCopy, load, refused, write_version
from tests.servers import ServerThread, inline_engine


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """Version 1 of image.digits; each test damages a version 2 beside it."""
    directory = tmp_path / "digits"
    shutil.copytree(DIGITS_MODELS / "1", directory / "1")
    return directory


@pytest.fixture
def served(models: Path) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with ServerThread(engine=inline_engine(("digits_copy", DigitsCopy(models)))) as server, \
            grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def truncated_manifest(directory: Path) -> None:
    (directory / "2").mkdir()
    shutil.copy(directory / "1" / "model.onnx", directory / "2" / "model.onnx")
    text = (directory / "1" / "manifest.json").read_text("utf-8")
    (directory / "2" / "manifest.json").write_text(text[:text.index('"sha256"') + 20], "utf-8")


def empty_folder(directory: Path) -> None:
    (directory / "2").mkdir()


def not_onnx(directory: Path) -> None:
    write_version(directory, 2, b"not an onnx graph")  # its manifest's digest is of these bytes


def no_model(directory: Path) -> None:
    (directory / "2").mkdir()
    shutil.copy(directory / "1" / "manifest.json", directory / "2" / "manifest.json")


@pytest.mark.parametrize(("damage", "said"), [
    (truncated_manifest, "version 2: manifest.json is not valid JSON (unterminated string starting at "
                         "line 1"),
    (empty_folder, "version 2 has no manifest.json"),
    (not_onnx, "version 2: model.onnx is not an ONNX model ONNX Runtime can read"),
    (no_model, "version 2 has no model.onnx"),
], ids=["truncated manifest", "empty folder", "not onnx", "no model"])
def test_a_damaged_version_is_refused_naming_its_file(
        served: pb_grpc.GRPCInferenceServiceStub, models: Path, damage: Callable[[Path], None],
        said: str) -> None:
    if damage is truncated_manifest:  # one line, so the column is the truncation's
        manifest = models / "1" / "manifest.json"
        manifest.write_text(json.dumps(json.loads(manifest.read_text("utf-8"))), "utf-8")
    damage(models)
    error = refused(lambda: load(served))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = str(error.details())
    assert said in details and "version 1 keeps serving" in details, details
    assert "Errno" not in details and "JSONDecodeError" not in details and "InvalidProtobuf" not in details


class Digits:
    """image.digits' generator on a copy of its models, as `museforge export image.digits` writes them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @museforge.hookimpl
    def register_generators(self, register: Callable[[museforge.Generator], None]) -> None:
        register(museforge.Generator("test.digits", "image", DIGITS.parameters, DIGITS.generate, ("png",),
                                     models=(museforge.ModelSource("image.digits", self.directory),)))

    @museforge.hookimpl
    def register_recipes(self, register: Callable[[museforge.Recipe], None]) -> None:
        register(museforge.Recipe(name="image.digits", description="digits", build="x:y",
                                  models_dir=self.directory))


@pytest.fixture
def damaged_at_start(tmp_path: Path) -> Iterator[Client]:
    copy = tmp_path / "digits"
    shutil.copytree(DIGITS_MODELS / "1", copy / "1")
    (copy / "1" / "manifest.json").write_text('{"name": "image.digits", "version": 1, "inp', "utf-8")
    with ServerThread(engine=inline_engine(("digits_copy", Digits(copy)))) as server, \
            Client(server.address, timeout=60) as client:
        yield client


def test_a_model_damaged_at_start_says_which_file_and_how_to_write_it(damaged_at_start: Client) -> None:
    with pytest.raises(Unavailable) as info:
        damaged_at_start.generate("test.digits", {"digit": 3})
    message = str(info.value)
    assert "version 1: manifest.json is not valid JSON (unterminated string starting at line 1, column 40)" \
        in message, message
    assert "`museforge export image.digits` writes it" in message



def test_a_misspelt_manifest_key_is_warned_of_at_load(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """``max_batch_sise`` loaded READY with the default batch and no word; a recipe's own keys
    (``validation``) stay quiet."""
    import logging

    from museforge.plugins.image.digits import MODELS_DIR as DIGITS
    from museforge.runtime.manifest import verify

    version = tmp_path / "digits" / "2"
    shutil.copytree(DIGITS / "2", version)
    with caplog.at_level(logging.WARNING, logger="museforge.runtime"):
        verify(version)
    assert not caplog.records  # the shipped manifest: its extra keys are no misspelling
    document = json.loads((version / "manifest.json").read_text())
    document["max_batch_sise"] = 4
    (version / "manifest.json").write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING, logger="museforge.runtime"):
        verify(version)
    [record] = caplog.records
    said = "'max_batch_sise' is not one museforge reads (did you mean 'max_batch_size'?)"
    assert said in record.getMessage()

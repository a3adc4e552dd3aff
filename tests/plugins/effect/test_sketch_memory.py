"""The colour memory of effect.sketch: what it retrieves, its graph, and the version it derives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from museforge.plugins.effect.sketch import MODELS
from museforge.plugins.effect.sketch_data import sketch_train
from museforge.plugins.effect.sketch_region_colours import NONE, PALETTE_OUTPUT
from museforge.runtime.manifest import Manifest, verify
from tests.models import served_version

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.train


def test_a_training_drawing_finds_itself_and_its_own_colours() -> None:
    from museforge.plugins.effect.sketch_memory import ColourMemory, colour_answers

    pairs = sketch_train().subset(np.arange(40))
    memory = ColourMemory(pairs).eval()
    lines = torch.from_numpy(pairs.unit_lines()[:8])
    with torch.no_grad():
        # Among its neighbours (OpenMoji has drawings with the same line art, so not always the first).
        assert all(i in row for i, row in enumerate(memory.neighbours(lines).tolist()))
        shares = memory(lines).numpy()
    assert shares.shape == (8, NONE + 1, 64, 64)
    assert np.allclose(shares.sum(axis=1), 1.0)
    own = colour_answers(pairs.subset(np.arange(8))).reshape(8, 32, 32)
    at = np.take_along_axis(shares[:, :, ::2, ::2], own[:, None].astype(np.int64), axis=1)[:, 0]
    assert at.min() >= 1 / 5 - 1e-6  # one neighbour of five, itself, answers its own colour everywhere


def test_the_served_version_has_a_memory_and_version_3_is_version_2_with_one_beside_it() -> None:
    served = Manifest.read(served_version(MODELS / "sketch"))
    assert [o.name for o in served.outputs] == ["image", PALETTE_OUTPUT]
    assert served.training["hyperparameters"]["colour_memory"]["drawings"] == 1858
    version = MODELS / "sketch" / "3"
    manifest = Manifest.read(version)
    assert manifest.training["derived_from_version"] == 2
    assert [o.name for o in manifest.outputs] == ["image", PALETTE_OUTPUT]
    memory = manifest.training["hyperparameters"]["colour_memory"]
    assert memory["drawings"] == 1858 and memory["parity_max_difference"] <= 1e-5
    _, data = verify(version)
    _, parent = verify(MODELS / "sketch" / "2")
    merged = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    alone = ort.InferenceSession(parent, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(4)
    feed = {"lines": (rng.random((3, 1, 64, 64)) > 0.9).astype(np.float32),
            "hints": np.zeros((3, 5, 64, 64), np.float32),
            "style": rng.standard_normal((3, 8)).astype(np.float32)}
    image, shares = merged.run(["image", PALETTE_OUTPUT], feed)
    assert np.array_equal(image, alone.run(["image"], feed)[0])  # version 2's network, untouched
    assert np.allclose(shares.sum(axis=1), 1.0)


def test_a_quick_derivation_records_its_parent_and_refuses_to_add_a_second_memory(tmp_path: Path) -> None:
    from museforge.plugins.effect.sketch_memory import derive_version

    written = derive_version(MODELS / "sketch" / "2", tmp_path, quick=True)
    manifest = Manifest.read(written)
    assert written == tmp_path / "1" and manifest.quick
    assert manifest.training["hyperparameters"]["colour_memory"]["drawings"] == 48
    assert manifest.training["hyperparameters"]["colour_memory"]["parity_max_difference"] <= 1e-5
    [data] = manifest.training_data
    assert data.licence == "CC-BY-SA-4.0"
    assert "model_colour_error_clean" in manifest.metrics
    with pytest.raises(FileExistsError):
        derive_version(MODELS / "sketch" / "2", tmp_path, 1, quick=True)
    with pytest.raises(ValueError, match="already has a colour memory"):
        derive_version(written, tmp_path, quick=True)


def test_the_command_names_a_missing_version_and_says_why_it_refuses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from museforge.plugins.effect.sketch_memory import main

    with pytest.raises(SystemExit) as exited:
        main(["--from-version", "99"])
    assert exited.value.code == 2 and "no effect.sketch version 99" in capsys.readouterr().err
    newest = served_version(MODELS / "sketch").name
    assert main(["--from-version", newest, "--quick", "--output", str(tmp_path)]) == 1
    assert "already has a colour memory" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())

"""effect.sketch version 6: version 5 with its weights stored as float16, and the command that
derives such a version (a quick derivation, figures on 12 held-out drawings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from museforge.plugins.effect.sketch import MODELS
from museforge.plugins.effect.sketch_data import sketch_train
from museforge.plugins.effect.sketch_half import derive_half_version, main
from museforge.plugins.effect.sketch_region_colours import DRAW_OUTPUT, PALETTE_OUTPUT
from museforge.runtime.manifest import Manifest, verify

SKETCH = MODELS / "sketch"


def test_version_6_is_version_5_stored_half_and_colours_as_it_did() -> None:
    manifest = Manifest.read(SKETCH / "6")
    assert manifest.training["derived_from_version"] == 5
    storage = manifest.training["hyperparameters"]["half_storage"]
    assert storage["weight_bytes_after"] < 0.6 * storage["weight_bytes_before"]
    assert (SKETCH / "6" / "model.onnx").stat().st_size < 0.62 * (SKETCH / "5" / "model.onnx").stat().st_size
    _, data = verify(SKETCH / "6")
    _, parent = verify(SKETCH / "5")
    graph = onnx.load_from_string(data).graph
    stored = [t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(stored) == storage["initialisers"] > 20
    half = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    whole = ort.InferenceSession(parent, providers=["CPUExecutionProvider"])
    pairs = sketch_train().subset(np.arange(8))
    feed = {"lines": pairs.unit_lines(), "hints": np.zeros((8, 5, 64, 64), np.float32),
            "style": np.random.default_rng(6).standard_normal((8, 8)).astype(np.float32)}
    names = ["image", PALETTE_OUTPUT, DRAW_OUTPUT]
    image, shares, draw = half.run(names, feed)
    want_image, want_shares, want_draw = whole.run(names, feed)
    # The same drawings recalled and the same rule; the network's colours move by the rounding only.
    assert np.array_equal(shares, want_shares) and np.array_equal(draw, want_draw)
    assert 0 < np.abs(image - want_image).max() <= 0.01


def test_a_quick_derivation_records_the_storage_and_refuses_to_halve_twice(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    written = derive_half_version(SKETCH / "5", tmp_path, quick=True)
    manifest = Manifest.read(written)
    assert written == tmp_path / "1" and manifest.quick and manifest.training["derived_from_version"] == 5
    storage = manifest.training["hyperparameters"]["half_storage"]
    assert storage["largest_output_change"][PALETTE_OUTPUT] == 0.0
    assert 0 < storage["largest_output_change"]["image"] <= 0.01
    assert [o.name for o in manifest.outputs] == ["image", PALETTE_OUTPUT, DRAW_OUTPUT]
    assert "model_histogram_distance_clean" in manifest.metrics
    with pytest.raises(FileExistsError):
        derive_half_version(SKETCH / "5", tmp_path, 1, quick=True)
    assert main(["--from-version", "6", "--quick", "--output", str(tmp_path)]) == 1
    assert "already stored as float16" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]

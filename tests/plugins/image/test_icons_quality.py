"""Quality of the shipped image.icons model, recomputed from its ONNX against held-out real emoji."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from museforge.plugins.image import icons_data
from museforge.plugins.image.icons import MODELS_DIR
from museforge.plugins.image.icons_quality import evaluate_session
from museforge.runtime.manifest import Manifest
from tests.models import as_recorded, served_version, shipped_session


@pytest.fixture(scope="module")
def version() -> Path:
    return served_version(MODELS_DIR)


@pytest.fixture(scope="module")
def figures(version: Path) -> dict[str, Any]:
    return evaluate_session(shipped_session(version))


def test_icons_are_the_category_asked_for(figures: dict[str, Any]) -> None:
    assert figures["judge_holdout_accuracy"] >= 0.6  # nine categories; chance is about 0.2
    assert figures["category_accuracy_relative"] >= 0.8


def test_diverse_and_not_copies(figures: dict[str, Any], version: Path) -> None:
    assert figures["diversity_ratio"] >= 0.5
    # Against the whole training split (fetched at export, too large to commit): generated icons
    # sit at least as far from their nearest training icon as held-out real ones do.
    assert Manifest.read(version).metrics["copy_ratio_full"] >= 1.0


def test_alpha_edges_are_clean(figures: dict[str, Any]) -> None:
    assert 1 / 1.5 <= figures["alpha_soft_ratio"] <= 1.5  # as served: clean, and still anti-aliased
    assert figures["alpha_soft_ratio_model"] > figures["alpha_soft_ratio"]


def test_manifest_records_the_measured_figures(figures: dict[str, Any], version: Path) -> None:
    manifest = Manifest.read(version)
    assert not manifest.quick
    for key in ("category_accuracy", "diversity_ratio", "copy_ratio", "alpha_soft_ratio",
                "alpha_soft_ratio_model"):
        assert manifest.metrics[key] == as_recorded(figures[key]), key
    assert manifest.dataset["held_out_fingerprint"] == icons_data.held_out_fingerprint()
    [data] = manifest.training_data
    assert (data.package, data.registry, data.licence) == ("emoji-datasource-google", "npm", "Apache-2.0")

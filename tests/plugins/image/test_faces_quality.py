"""Quality of the shipped image.faces model, judged against held-out LFW faces."""

from __future__ import annotations

import pytest

from museforge.plugins.image.face_data import faces_split
from museforge.plugins.image.faces import MODELS_DIR
from museforge.plugins.image.faces_quality import SAMPLES, evaluate_session
from museforge.runtime.manifest import Manifest
from tests.models import as_recorded, shipped_session


@pytest.fixture(scope="module")
def figures() -> dict[str, float]:
    return evaluate_session(shipped_session(MODELS_DIR / "1"), faces_split(), SAMPLES)


def test_the_judge_tells_faces_from_non_faces(figures: dict[str, float]) -> None:
    assert figures["classifier_holdout_accuracy"] >= 0.9
    for sanity in ("noise", "blob", "blurred", "shuffled"):
        assert figures[f"sanity_{sanity}_face_fraction"] <= 0.2, sanity


def test_generated_images_are_judged_faces(figures: dict[str, float]) -> None:
    assert figures["generated_face_fraction"] >= 0.80


def test_no_collapse_and_no_copying(figures: dict[str, float]) -> None:
    assert figures["diversity_ratio"] >= 0.6
    assert figures["nearest_train_distance_ratio"] >= 0.8  # not pasting training faces


def test_manifest_records_the_measured_figures(figures: dict[str, float]) -> None:
    manifest = Manifest.read(MODELS_DIR / "1")
    assert not manifest.quick
    for key in ("generated_face_fraction", "diversity_ratio", "classifier_holdout_accuracy"):
        assert manifest.metrics[key] == as_recorded(figures[key]), key
    assert manifest.dataset["fingerprint"] == faces_split().fingerprint

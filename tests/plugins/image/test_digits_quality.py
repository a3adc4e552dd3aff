"""Quality of the shipped image.digits models, measured on held-out real digits.

Version 2 (served) is scored on the committed MNIST held-out split; version 1 on its own
scikit-learn split, as when it was exported, and on MNIST for comparison.
"""

from __future__ import annotations

from typing import Any

import pytest

from museforge.export.convert import max_ir_version
from museforge.plugins.image.digits import MODELS_DIR
from museforge.plugins.image.digits_data import MNIST_TRAINING_DATA, digits_28, held_out_fingerprint
from museforge.plugins.image.digits_quality import (
    SAMPLES_PER_DIGIT,
    evaluate_mnist_session,
    evaluate_session,
)
from museforge.runtime.manifest import Manifest
from tests.models import as_recorded, shipped_session


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return evaluate_mnist_session(shipped_session(MODELS_DIR / "2"), per_digit=SAMPLES_PER_DIGIT)


@pytest.fixture(scope="module")
def v1_figures() -> dict[str, Any]:
    return evaluate_session(shipped_session(MODELS_DIR / "1"), digits_28(), per_digit=SAMPLES_PER_DIGIT)


def _requested_digits(figures: dict[str, Any]) -> None:
    # The judge is only meaningful if it reads real held-out digits well.
    assert figures["classifier_holdout_accuracy"] >= 0.95
    assert figures["generated_accuracy"] >= 0.90
    for digit in range(10):
        assert figures[f"generated_accuracy_{digit}"] >= 0.6, digit


def _no_mode_collapse(figures: dict[str, Any]) -> None:
    assert figures["diversity_ratio"] >= 0.50
    for digit in range(10):
        assert figures[f"diversity_ratio_{digit}"] >= 0.35, digit


def test_generated_digits_are_the_requested_digit(figures: dict[str, Any]) -> None:
    _requested_digits(figures)


def test_no_mode_collapse(figures: dict[str, Any]) -> None:
    _no_mode_collapse(figures)


def test_generated_digits_are_not_copies_of_training_digits(figures: dict[str, Any]) -> None:
    # Generated digits lie about as far from the training digits as unseen real ones do.
    assert figures["copy_ratio"] >= 0.8
    # Against the whole training split (fetched at export time, so recorded, not recomputed).
    assert Manifest.read(MODELS_DIR / "2").metrics["copy_ratio_full"] >= 0.8


def test_v2_draws_mnist_digits_better_than_v1(figures: dict[str, Any]) -> None:
    v1_on_mnist = evaluate_mnist_session(shipped_session(MODELS_DIR / "1"), per_digit=SAMPLES_PER_DIGIT)
    assert figures["generated_accuracy"] > v1_on_mnist["generated_accuracy"]
    assert figures["diversity_ratio"] > v1_on_mnist["diversity_ratio"]


def test_manifest_records_the_figures_the_test_measures(figures: dict[str, Any]) -> None:
    manifest = Manifest.read(MODELS_DIR / "2")
    assert manifest.version == 2 and not manifest.quick and manifest.seed is not None
    for key in ("generated_accuracy", "diversity_ratio", "classifier_holdout_accuracy", "copy_ratio"):
        assert manifest.metrics[key] == as_recorded(figures[key]), key
    assert manifest.dataset["held_out_fingerprint"] == held_out_fingerprint()
    assert manifest.dataset["train_images"] == 4000 and manifest.dataset["held_out_images"] == 1000
    assert manifest.dataset["committed_fixture"] is False
    assert manifest.training_data == [MNIST_TRAINING_DATA]
    assert manifest.training["seconds"] > 0
    assert manifest.ir_version <= max_ir_version()


def test_v1_still_meets_its_figures_on_its_own_data(v1_figures: dict[str, Any]) -> None:
    _requested_digits(v1_figures)
    _no_mode_collapse(v1_figures)
    manifest = Manifest.read(MODELS_DIR / "1")
    for key in ("generated_accuracy", "diversity_ratio", "classifier_holdout_accuracy"):
        assert manifest.metrics[key] == as_recorded(v1_figures[key]), key
    assert manifest.dataset["fingerprint"] == digits_28().fingerprint


def test_v1_held_out_digits_are_never_in_training() -> None:
    split = digits_28()
    train = {x.tobytes() for x in split.train_x}
    assert not any(x.tobytes() in train for x in split.test_x)
    assert len(split.test_x) >= 300

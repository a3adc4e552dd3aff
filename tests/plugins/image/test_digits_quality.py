"""Quality of the shipped image.digits model, measured on held-out real digits."""

from __future__ import annotations

import pytest

from museforge.export.convert import max_ir_version
from museforge.plugins.image.digits import MODELS_DIR
from museforge.plugins.image.digits_data import digits_28
from museforge.plugins.image.digits_quality import SAMPLES_PER_DIGIT, evaluate_session
from museforge.runtime.manifest import Manifest
from tests.models import shipped_session


@pytest.fixture(scope="module")
def figures() -> dict[str, float]:
    return evaluate_session(shipped_session(MODELS_DIR / "1"), digits_28(), per_digit=SAMPLES_PER_DIGIT)


def test_generated_digits_are_the_requested_digit(figures: dict[str, float]) -> None:
    # The judge is only meaningful if it reads real held-out digits well.
    assert figures["classifier_holdout_accuracy"] >= 0.95
    assert figures["generated_accuracy"] >= 0.90
    for digit in range(10):
        assert figures[f"generated_accuracy_{digit}"] >= 0.6, digit


def test_no_mode_collapse(figures: dict[str, float]) -> None:
    assert figures["diversity_ratio"] >= 0.50
    for digit in range(10):
        assert figures[f"diversity_ratio_{digit}"] >= 0.35, digit


def test_manifest_records_the_figures_the_test_measures(figures: dict[str, float]) -> None:
    manifest = Manifest.read(MODELS_DIR / "1")
    assert not manifest.quick and manifest.seed is not None
    for key in ("generated_accuracy", "diversity_ratio", "classifier_holdout_accuracy"):
        assert manifest.metrics[key] == pytest.approx(figures[key], abs=1e-9), key
    assert manifest.dataset["fingerprint"] == digits_28().fingerprint
    assert manifest.training["seconds"] > 0
    assert manifest.ir_version <= max_ir_version()


def test_held_out_digits_are_never_in_training() -> None:
    split = digits_28()
    train = {x.tobytes() for x in split.train_x}
    assert not any(x.tobytes() in train for x in split.test_x)
    assert len(split.test_x) >= 300

"""Quality of the shipped effect.denoise model on the held-out photographs."""

from __future__ import annotations

from typing import Any

import pytest

from museforge.plugins.effect.denoise import MODELS
from museforge.plugins.effect.denoise_quality import evaluate_session
from museforge.plugins.effect.photo_data import PhotoSplit, photo_split
from museforge.runtime.manifest import Manifest
from tests.models import shipped_session

SHIPPED = MODELS / "denoise" / "1"


@pytest.fixture(scope="module")
def split() -> PhotoSplit:
    return photo_split()


@pytest.fixture(scope="module")
def figures(split: PhotoSplit) -> dict[str, Any]:
    return evaluate_session(shipped_session(SHIPPED), split, sigmas=(25,))


def test_sigma25_beats_the_noisy_input_by_4db(figures: dict[str, Any]) -> None:
    assert figures["psnr_model_sigma25"] >= figures["psnr_noisy_sigma25"] + 4.0


def test_sigma25_beats_the_best_gaussian_blur(figures: dict[str, Any]) -> None:
    assert figures["psnr_model_sigma25"] > figures["psnr_blur_sigma25"]
    for name, photo in figures["per_photo"].items():  # not carried by one easy photograph
        assert photo["sigma25"]["psnr_model"] > photo["sigma25"]["psnr_blur"], name


def test_manifest_records_the_measured_figures(figures: dict[str, Any], split: PhotoSplit) -> None:
    manifest = Manifest.read(SHIPPED)
    assert manifest.name == "effect.denoise" and not manifest.quick
    assert [t.name for t in manifest.inputs] == ["image", "sigma"]
    assert manifest.metrics["psnr_model_sigma25"] == pytest.approx(figures["psnr_model_sigma25"], abs=1e-4)
    assert manifest.dataset["fingerprint"] == split.fingerprint
    assert (SHIPPED / "model.onnx").stat().st_size < 3_000_000

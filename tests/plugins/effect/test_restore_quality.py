"""Quality of the shipped effect.restore model on the held-out photographs."""

from __future__ import annotations

from typing import Any

import pytest

from museforge.plugins.effect.photo_data import PhotoSplit, photo_split
from museforge.plugins.effect.restore import MODELS
from museforge.plugins.effect.restore_quality import EVAL_QUALITIES, evaluate_session
from museforge.runtime.manifest import Manifest
from tests.models import shipped_session

SHIPPED = MODELS / "restore" / "1"


@pytest.fixture(scope="module")
def split() -> PhotoSplit:
    return photo_split()


@pytest.fixture(scope="module")
def figures(split: PhotoSplit) -> dict[str, Any]:
    return evaluate_session(shipped_session(SHIPPED), split)


# The target: at least +1 dB over the decoded JPEG at each of qualities 10, 20 and 30,
# for the effect as served (network, then the luma quantisation-constraint projection).
@pytest.mark.parametrize("quality", EVAL_QUALITIES)
def test_beats_the_compressed_input_by_1db(figures: dict[str, Any], quality: int) -> None:
    assert figures[f"psnr_model_q{quality}"] >= figures[f"psnr_jpeg_q{quality}"] + 1.0


# The projection adds under 0.01 dB: the network alone meets the target too.
@pytest.mark.parametrize("quality", EVAL_QUALITIES)
def test_the_network_alone_beats_the_compressed_input_by_1db(figures: dict[str, Any], quality: int) -> None:
    assert figures[f"psnr_network_q{quality}"] >= figures[f"psnr_jpeg_q{quality}"] + 1.0


@pytest.mark.parametrize("quality", EVAL_QUALITIES)
def test_the_projection_never_lowers_psnr(figures: dict[str, Any], quality: int) -> None:
    assert figures["jpeg_constraint"] is True
    assert figures[f"psnr_model_q{quality}"] >= figures[f"psnr_network_q{quality}"]


@pytest.mark.parametrize("quality", EVAL_QUALITIES)
def test_beats_the_best_gaussian_blur(figures: dict[str, Any], quality: int) -> None:
    assert figures[f"psnr_model_q{quality}"] > figures[f"psnr_blur_q{quality}"]


def test_manifest_records_the_measured_figures(figures: dict[str, Any], split: PhotoSplit) -> None:
    manifest = Manifest.read(SHIPPED)
    assert manifest.name == "effect.restore" and not manifest.quick
    assert [t.name for t in manifest.inputs] == ["image", "quality"]
    assert manifest.metrics["jpeg_constraint"] is True  # the figures are those of the effect as served
    for quality in EVAL_QUALITIES:
        for key in (f"psnr_model_q{quality}", f"psnr_network_q{quality}"):
            assert manifest.metrics[key] == pytest.approx(figures[key], abs=1e-4), key
    assert manifest.dataset["fingerprint"] == split.fingerprint
    assert (SHIPPED / "model.onnx").stat().st_size < 3_000_000

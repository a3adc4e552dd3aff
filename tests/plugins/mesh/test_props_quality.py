"""The shipped mesh.props model on held-out shapes and its own samples, meshed as served.

Recomputes the manifest's figures with the functions the recipe used
(``plugins/mesh/props_quality.py``) on the shipped ONNX files, after the sha256 check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from museforge.plugins.mesh import props as props_generator
from museforge.plugins.mesh.props_data import prop_grids
from museforge.plugins.mesh.props_quality import HELD_OUT_PER_FAMILY, evaluate_props
from museforge.plugins.mesh.shapes import FAMILIES
from museforge.runtime.manifest import Manifest
from tests.models import shipped_session

MODELS = Path(props_generator.__file__).parent / "models"
DECODER, ENCODER = MODELS / "props" / "1", MODELS / "props_encoder" / "1"


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return Manifest.read(DECODER)


@pytest.fixture(scope="module")
def metrics(manifest: Manifest) -> dict[str, Any]:
    held_out = prop_grids("held_out", HELD_OUT_PER_FAMILY)
    return evaluate_props(shipped_session(DECODER), shipped_session(ENCODER), held_out,
                          samples_per_family=int(manifest.metrics["samples_per_family"]))


def test_the_manifest_figures_are_what_the_shipped_files_give(metrics: dict[str, Any],
                                                               manifest: Manifest) -> None:
    for key, value in metrics.items():
        assert manifest.metrics[key] == pytest.approx(value, abs=1e-3), key
    assert Manifest.read(ENCODER).metrics["companion_of"] == "mesh.props"
    assert manifest.inputs[0].shape[1] == props_generator.LATENT_DIM


def test_held_out_reconstruction_iou_at_32(metrics: dict[str, Any]) -> None:
    assert metrics["reconstruction_iou"] >= 0.85


def test_generated_props_are_watertight(metrics: dict[str, Any]) -> None:
    assert metrics["watertight"] >= 0.95


def test_generated_props_are_of_the_requested_family(metrics: dict[str, Any]) -> None:
    assert metrics["classifier_accuracy_real_held_out"] >= 0.95  # the judge itself is sound
    assert metrics["family_accuracy"] >= 0.85
    for family in FAMILIES:
        assert metrics[f"family_accuracy_{family}"] >= 0.6, family


def test_generated_props_of_a_family_differ_from_each_other(metrics: dict[str, Any]) -> None:
    for family in FAMILIES:
        # Mean pairwise 1 - IoU of samples: at least 40% of the real shapes' spread.
        assert metrics[f"diversity_{family}"] >= 0.4 * metrics[f"diversity_real_{family}"], family

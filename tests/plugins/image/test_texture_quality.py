"""Quality of the shipped image.texture model against held-out strips of each photograph."""

from __future__ import annotations

import pytest

from museforge.plugins.image.texture import MODELS_DIR
from museforge.plugins.image.texture_data import FAMILIES, texture_split
from museforge.plugins.image.texture_quality import EVAL_PER_FAMILY, evaluate_session
from museforge.runtime.manifest import Manifest
from tests.models import as_recorded, shipped_session


@pytest.fixture(scope="module")
def figures() -> dict[str, float]:
    return evaluate_session(shipped_session(MODELS_DIR / "1"), texture_split(), EVAL_PER_FAMILY)


def test_every_family_is_closest_to_its_own_held_out_texture(figures: dict[str, float]) -> None:
    assert figures["families_closest_to_own"] == 1.0
    for family in FAMILIES:
        assert figures[f"margin_{family}"] > 0, family


def test_tileable_seams_are_invisible(figures: dict[str, float]) -> None:
    for family in FAMILIES:
        assert figures[f"seam_ratio_pooled_256_{family}"] <= 1.25, family
    assert figures["seam_ratio_1024"] <= 1.25


def test_manifest_records_the_measured_figures(figures: dict[str, float]) -> None:
    manifest = Manifest.read(MODELS_DIR / "1")
    assert not manifest.quick
    for key in ("families_closest_to_own", "seam_ratio_pooled_256", "seam_ratio_1024"):
        assert manifest.metrics[key] == as_recorded(figures[key]), key
    assert manifest.dataset["fingerprint"] == texture_split().fingerprint

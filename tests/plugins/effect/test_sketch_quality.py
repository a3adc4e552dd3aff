"""Quality of the shipped effect.sketch model, recomputed from its ONNX on held-out OpenMoji drawings.

Each target of the sketch-to-image issue is asserted on the figures the served version gives; the
histogram's was a strict xfail until version 6 met it (0.418 against the nearest drawing's 0.421).
"""

from __future__ import annotations

from typing import Any

import pytest

from museforge.plugins.effect import sketch_data
from museforge.plugins.effect.sketch import MODELS
from museforge.plugins.effect.sketch_quality import evaluate_session
from museforge.runtime.manifest import Manifest
from tests.models import as_recorded, served_version, shipped_session

BASELINES = ("flat_fill", "nearest")
HINT_BOUND = 20.0  # mean CIELAB ΔE of a hinted region from the hinted colour


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return evaluate_session(shipped_session(served_version(MODELS / "sketch")))


def test_colours_beat_the_nearest_drawing_and_the_flat_fill_palette(figures: dict[str, Any]) -> None:
    assert figures["model_colour_error_clean"] < figures["nearest_colour_error_clean"]
    assert figures["model_histogram_distance_clean"] < figures["flat_fill_histogram_distance_clean"]
    # Strokes as a rough hand draws them: the model beats the flat fill on both counts.
    assert figures["model_colour_error_rougher"] < figures["flat_fill_colour_error_rougher"]
    assert figures["model_histogram_distance_rougher"] < figures["flat_fill_histogram_distance_rougher"]


def test_colours_closer_to_the_artists_than_the_flat_fill(figures: dict[str, Any]) -> None:
    assert figures["model_colour_error_clean"] < figures["flat_fill_colour_error_clean"]
    assert figures["model_colour_error_variation0"] < figures["model_colour_error_clean"]  # the best guess
    # Strokes as a hand draws them, half strength: still closer than the flat fill.
    assert figures["model_colour_error_rough"] < figures["flat_fill_colour_error_rough"]


def test_palette_closer_to_the_artists_than_the_nearest_drawing(figures: dict[str, Any]) -> None:
    assert figures["model_histogram_distance_clean"] < figures["nearest_histogram_distance_clean"]


@pytest.mark.parametrize("tag", ["clean", "rough", "rougher"])
def test_structure_follows_the_sketch(figures: dict[str, Any], tag: str) -> None:
    assert figures[f"model_structure_f1_{tag}"] >= 0.8
    assert figures[f"model_structure_f1_{tag}"] >= figures[f"nearest_structure_f1_{tag}"]
    # As faithful to the strokes as the artist's own colour version (the flat fill keeps the
    # sketch's strokes exactly and adds nothing dark: it is the ceiling, not the bar).
    assert figures[f"model_structure_f1_{tag}"] >= figures[f"real_structure_f1_{tag}"] - 0.02


def test_the_realism_judges_call_the_model_real_more_often_than_the_baseline_they_learnt(
        figures: dict[str, Any]) -> None:
    for baseline in BASELINES:
        assert figures[f"judge_vs_{baseline}_accuracy"] > 0.55, baseline  # each judge learnt something
        assert (figures[f"judge_vs_{baseline}_model_called_real"]
                > figures[f"judge_vs_{baseline}_baseline_called_real"] + 0.2), baseline


def test_hints_move_the_colour_and_seeds_vary(figures: dict[str, Any]) -> None:
    assert figures["hint_error"] < figures["hint_error_unhinted"] - 20.0
    # A floor against a change that gains only by giving seeds less to choose. It was 5, and 4.5
    # while the gaps in strokes were being closed (5.50 -> 4.97). It is 4 since no region is painted
    # in yellow's edge shades (5.09 -> 4.27): seeds had painted huts, steaks and map pins olive, a
    # colour no artist fills with, and the change gains at variation 0 too, where seeds choose
    # nothing (docs/effects/sketch.md).
    assert figures["variation_spread"] > 4.0


def test_hinted_regions_take_the_hinted_colour(figures: dict[str, Any]) -> None:
    assert figures["hint_error"] <= HINT_BOUND
    # Flat colours paint hinted pixels by construction; the network's own colours must follow too.
    assert figures["hint_error_free_palette"] <= HINT_BOUND
    # The scribble alone (hint_fill="strokes") still moves its region most of the way.
    assert figures["hint_error_strokes_only"] < figures["hint_error_unhinted"] - 20.0


def test_manifest_records_the_measured_figures(figures: dict[str, Any]) -> None:
    manifest = Manifest.read(served_version(MODELS / "sketch"))
    assert not manifest.quick
    for key in ("model_colour_error_clean", "model_structure_f1_clean", "hint_error",
                "hint_error_free_palette", "variation_spread", "judge_vs_nearest_model_called_real",
                "model_histogram_distance_rougher"):
        assert manifest.metrics[key] == as_recorded(figures[key]), key
    assert manifest.dataset["held_out_fingerprint"] == sketch_data.held_out_fingerprint()
    [data] = manifest.training_data
    assert (data.package, data.registry, data.licence) == ("openmoji", "npm", "CC-BY-SA-4.0")

"""The shipped music.melody model, re-measured on held-out pieces against the issue's targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from museforge.plugins.music import dataset
from museforge.plugins.music.melody import MODELS_DIR, SERVED_MODES, STATE_SHAPE, STYLE_METRES
from museforge.plugins.music.melody_quality import evaluate_melody_model, session_step
from museforge.plugins.music.tokens import STYLES
from museforge.runtime.manifest import Manifest
from tests.models import shipped_session

VERSION = MODELS_DIR / "1"


@pytest.fixture(scope="module")
def data() -> dataset.MelodySet:
    return dataset.load()


@pytest.fixture(scope="module")
def figures(data: dataset.MelodySet) -> dict[str, Any]:
    return evaluate_melody_model(session_step(shipped_session(VERSION)), STATE_SHAPE,
                                 data.split(held_out=False), data.split(held_out=True))


def test_nll_is_15_percent_below_the_best_smoothed_bigram(figures: dict[str, Any]) -> None:
    assert figures["nll_reduction"] >= 0.15, figures


def test_the_classifier_knows_real_styles(figures: dict[str, Any]) -> None:
    # Without this the next test would mean nothing.
    assert figures["classifier_accuracy_real_held_out"] >= 0.8, figures


def test_generated_pieces_are_classified_as_the_requested_style(figures: dict[str, Any]) -> None:
    assert figures["style_accuracy_generated"] >= 0.8, figures


@pytest.mark.parametrize("style", STYLES)
def test_generated_pitches_stay_in_the_key(figures: dict[str, Any], style: str) -> None:
    per = figures["per_style"][style]
    assert per["in_scale"] >= 0.95, per
    assert per["ends_on_tonic"] == 1.0


def test_manifest_records_the_figures_the_model_gives(figures: dict[str, Any],
                                                      data: dataset.MelodySet) -> None:
    manifest = Manifest.read(VERSION)
    assert manifest.name == "music.melody" and not manifest.quick
    assert manifest.dataset["fingerprint"] == data.fingerprint
    recorded = manifest.metrics
    for key in ("nll_model", "nll_bigram"):
        assert recorded[key] == pytest.approx(figures[key], rel=1e-3), key
    for key in ("style_accuracy_generated", "in_scale_generated", "classifier_accuracy_real_held_out"):
        assert recorded[key] == pytest.approx(figures[key], abs=0.03), key
    assert Path(VERSION / "model.onnx").stat().st_size < 6_000_000


def test_served_choices_match_what_the_data_trains(data: dataset.MelodySet) -> None:
    """Every metre and mode the generator offers has real training pieces behind it."""
    train = data.split(held_out=False)
    for style in STYLES:
        pieces = [m for m in train if m.style == style]
        metres = {f"{m.metre[0]}/{m.metre[1]}" for m in pieces}
        assert set(STYLE_METRES[style]) <= metres, style
        metre_counts = {s: sum(f"{m.metre[0]}/{m.metre[1]}" == s for m in pieces)
                        for s in STYLE_METRES[style]}
        assert min(metre_counts.values()) >= 30, (style, metre_counts)
        counts = {mode: sum(m.mode == mode for m in pieces) for mode in SERVED_MODES[style]}
        assert min(counts.values()) >= 30, (style, counts)
        first = max(metres, key=lambda s: sum(f"{m.metre[0]}/{m.metre[1]}" == s for m in pieces))
        assert STYLE_METRES[style][0] == first  # the default metre is the style's commonest

"""The shipped music.harmony model, re-measured on held-out chorales against the rule-based baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from museforge.plugins.music import chorale_voices, corpus
from museforge.plugins.music.harmony import Harmoniser
from museforge.plugins.music.harmony_features import HIDDEN, MINOR_LIKE, step_features
from museforge.plugins.music.harmony_quality import evaluate_harmony, harmonise, session_infer
from museforge.plugins.music.melody import HARMONY_MODELS_DIR
from museforge.plugins.music.tokens import NoteEvent
from museforge.runtime.manifest import Manifest
from tests.models import shipped_session

VERSION = HARMONY_MODELS_DIR / "1"


@pytest.fixture(scope="module")
def data() -> chorale_voices.ChoraleSet:
    return chorale_voices.load()


@pytest.fixture(scope="module")
def infer() -> Any:
    return session_infer(shipped_session(VERSION))


@pytest.fixture(scope="module")
def figures(infer: Any, data: chorale_voices.ChoraleSet) -> dict[str, Any]:
    return evaluate_harmony(infer, data.split(held_out=True))


def test_cache_matches_a_fresh_parse_of_sample_chorales(data: chorale_voices.ChoraleSet) -> None:
    cached = {c.id: c for c in data.chorales}
    paths = [p for p in corpus._corpus_paths("bach") if p.stem in ("bwv10.7", "bwv26.6")]
    assert len(paths) == 2
    for path in paths:
        fresh, problem = chorale_voices.chorale_from_path(path)
        assert fresh is not None, problem
        kept = cached[fresh.id]
        assert (kept.metre, kept.tonic, kept.mode) == (fresh.metre, fresh.tonic, fresh.mode)
        assert np.array_equal(kept.pitches, fresh.pitches) and np.array_equal(kept.onsets, fresh.onsets)
    assert chorale_voices.fingerprint(data.chorales) == data.fingerprint
    held = {c.id for c in data.split(held_out=True)}
    assert not held & {c.id for c in data.split(held_out=False)} and 25 <= len(held) <= 50


def test_fewer_parallel_fifths_and_octaves_than_the_baseline(figures: dict[str, Any]) -> None:
    model, rules = figures["model"], figures["baseline"]
    assert model["parallels_per_100_steps"] < rules["parallels_per_100_steps"], figures


def test_voices_stay_in_range_at_least_as_often_as_the_baseline(figures: dict[str, Any]) -> None:
    assert figures["model"]["in_choir_range"] >= figures["baseline"]["in_choir_range"], figures
    assert figures["model"]["in_choir_range"] >= 0.95, figures


def test_more_chord_tones_agree_with_bach_than_the_baseline(figures: dict[str, Any]) -> None:
    model, rules = figures["model"], figures["baseline"]
    assert model["chord_tone_agreement"] > rules["chord_tone_agreement"], figures
    assert model["bass_agreement"] > rules["bass_agreement"], figures


def test_voices_never_cross_and_sit_below_the_tune(infer: Any, data: chorale_voices.ChoraleSet) -> None:
    for chorale in data.split(held_out=True)[:6]:
        voices = harmonise(infer, chorale)
        soprano = chorale.pitches[0]
        assert voices.shape == (len(soprano), 3)
        sounding = soprano >= 0
        played = voices[sounding]
        assert (played[:, 0] > played[:, 1]).all() and (played[:, 1] > played[:, 2]).all()
        assert (played[:, 0] < soprano[sounding]).all()
        first = int(np.flatnonzero(sounding)[0])
        assert (voices[:first] == -1).all()  # a pickup's leading rest is not accompanied


def test_bar_by_bar_with_the_state_carried_is_one_pass_over_the_piece(
        data: chorale_voices.ChoraleSet) -> None:
    # The server feeds one bar a call, carrying the GRU's state: that must be the model run over the
    # whole piece at once, or streamed harmony would drift from what the model learnt.
    session = shipped_session(VERSION)
    chorale = data.split(held_out=True)[0]
    bar_steps = chorale.bar_steps
    steps = chorale.pitches.shape[1] // bar_steps * bar_steps
    bars = steps // bar_steps
    features = step_features(chorale.pitches[0, :steps].astype(np.int64), chorale.onsets[0, :steps],
                             chorale.tonic, chorale.metre, bar_steps, bars)
    key = {"tonic": np.array([chorale.tonic]), "minor": np.array([MINOR_LIKE[chorale.mode]])}
    names = [o.name for o in session.get_outputs()]

    def run(window: slice, state: np.ndarray) -> dict[str, np.ndarray]:
        feed = {name: values[None, window] for name, values in features.items()}
        return dict(zip(names, session.run(None, {**feed, **key, "state": state}), strict=True))

    whole = run(slice(0, steps), np.zeros((1, 1, HIDDEN), np.float32))
    state = np.zeros((1, 1, HIDDEN), np.float32)
    parts = []
    for bar in range(bars):
        out = run(slice(bar * bar_steps, (bar + 1) * bar_steps), state)
        parts.append(out["alto"])
        state = out["next_state"]
    np.testing.assert_allclose(np.concatenate(parts, 1), whole["alto"], atol=1e-4)
    np.testing.assert_allclose(state, whole["next_state"], atol=1e-5)


def test_manifest_records_the_figures_the_model_gives(figures: dict[str, Any],
                                                      data: chorale_voices.ChoraleSet) -> None:
    manifest = Manifest.read(VERSION)
    assert manifest.name == "music.harmony" and not manifest.quick
    assert manifest.dataset["fingerprint"] == data.fingerprint
    for row in ("model", "baseline", "bach"):
        for key in ("parallels_per_100_steps", "in_choir_range", "chord_tone_agreement", "bass_agreement"):
            assert manifest.metrics[row][key] == pytest.approx(figures[row][key], abs=1e-3), (row, key)


@pytest.mark.parametrize("soprano", [36, 48, 55, 95])
def test_any_tune_gets_three_voices_even_where_no_chord_fits_under_it(infer: Any, soprano: int) -> None:
    # A tune in the bass's register leaves no ordered chord among the likeliest pitches: the decoder
    # widens its choice and, failing that, plays the likeliest pitches rather than failing the request.
    harmoniser = Harmoniser(infer, 0, "major", (4, 4), 2)
    events = [NoteEvent(soprano, 0, 16), NoteEvent(soprano, 16, 16)]
    for bar in range(2):
        pitches, voices = harmoniser.bar(events, bar)
        assert voices.shape == (8, 3) and (pitches == soprano).all()
        assert ((voices >= 31) & (voices <= 79)).all()

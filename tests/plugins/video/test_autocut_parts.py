"""video.autocut's parts on their own: beats from a piece's tags and tracked from clicks, cut points
on beats, and the order-keeping search picking the best moments."""

from __future__ import annotations

import json
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from museforge.plugins.video import beats
from museforge.plugins.video.autocut_analysis import ClipAnalysis, novelty
from museforge.plugins.video.autocut_plan import Weights, cut_points, pick


def test_a_pieces_own_tempo_gives_exact_beats() -> None:
    tags = {"comment": json.dumps({"generator": "music.melody", "x.tempo_qpm": "120",
                                   "x.time_signature": "6/8"})}
    assert beats.piece_beat_seconds(tags) == pytest.approx(0.75)  # the dotted quarter
    assert beats.piece_beat_seconds({"comment": json.dumps({"x.tempo_qpm": "90"})}) == pytest.approx(60 / 90)
    assert beats.piece_beat_seconds({"comment": "recorded live"}) is None
    tagged = {"comment": json.dumps({"x.tempo_qpm": "120"})}
    found = beats.beats_of(np.zeros(beats.RATE * 4, np.float32), tagged)
    assert found.source == "piece" and found.times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])


@pytest.mark.parametrize(("bpm", "offset"), [(72.0, 0.4), (100.0, 0.1), (128.0, 0.25), (165.0, 0.0)])
def test_clicks_are_tracked_at_their_tempo_and_times(bpm: float, offset: float) -> None:
    rate = beats.RATE
    wave = np.random.default_rng(1).normal(0, 0.002, rate * 16).astype(np.float32)
    ring = np.arange(400)
    burst = np.sin(2 * np.pi * 1500 * ring / rate) * np.exp(-ring / 80)
    truth = np.arange(offset, 15.5, 60 / bpm)
    for t in truth:
        at = int(t * rate)
        wave[at:at + 400] += 0.5 * burst[:len(wave) - at]
    found = beats.track(wave)
    # Fast music may be counted in half time (every other beat): cuts on it still land on beats.
    halved = bpm > 150
    assert found.source == "tracked"
    assert found.tempo == pytest.approx(bpm / 2 if halved else bpm, rel=0.02)
    times = np.asarray(found.times)
    # Every beat found is a true one (but one at the very start, where no cut ever goes).
    assert all(np.min(np.abs(truth - t)) < 0.03 for t in times if t > 0.1)
    hits = sum(np.min(np.abs(times - t)) < 0.03 for t in truth[2:-1])  # the ends may be missed
    assert hits >= (len(truth) - 3) // (2 if halved else 1) - 1


def test_cut_points_land_on_every_nth_beat_within_half_a_frame() -> None:
    grid = beats.Beats(tuple(k * 60 / 97 for k in range(40)), 97.0, "piece")  # 0.6186 s a beat
    edges = cut_points(total=500, fps=Fraction(24000, 1001), shot_seconds=2.5, beats=grid)
    assert edges[0] == 0 and edges[-1] == 500
    rate = 24000 / 1001
    for frame in edges[1:-1]:
        nearest = min(grid.times, key=lambda t: abs(t * rate - frame))
        assert abs(nearest * rate - frame) <= 0.5
    steps = np.diff(edges[1:-1])
    assert set(np.round(steps / (4 * 60 / 97 * rate))) == {1.0}  # every fourth beat: 2.47 s
    assert cut_points(100, Fraction(25), 2.0, None) == [0, 50, 100]


def _analysis(index: int, scores: np.ndarray, shots: np.ndarray, fps: int = 25) -> ClipAnalysis:
    frames = len(scores)
    clip: Any = SimpleNamespace(fps=Fraction(fps), name=f"v{index}")
    colours = np.zeros((frames, 64), np.float32)
    colours[np.arange(frames), shots % 64] = 1.0
    return ClipAnalysis(index, clip, motion=scores.astype(np.float32), sharpness=scores.astype(np.float32),
                        exposure=np.ones(frames, np.float32), loudness=np.full(frames, -80.0, np.float32),
                        novelty=scores.astype(np.float32), colours=colours, shot_of=shots)


def test_the_search_takes_the_best_moments_in_order_inside_their_shots() -> None:
    # Two videos of four 50-frame shots; the good shots are the 2nd and 4th of the first, the 1st
    # and 3rd of the second.
    shots = np.repeat(np.arange(4), 50)
    good_a = np.repeat([0.1, 0.9, 0.1, 0.8], 50)
    good_b = np.repeat([0.85, 0.1, 0.95, 0.1], 50)
    analyses = [_analysis(0, good_a, shots), _analysis(1, good_b, shots)]
    picked = pick(analyses, [0, 40, 80, 120, 160], Fraction(25), Weights(1.0, 1.0, 0.0, 1.0, 0.0))
    assert [(p.video, p.start // 50) for p in picked] == [(0, 1), (0, 3), (1, 0), (1, 2)]
    assert all(p.within_shot and p.source_frames == 40 for p in picked)
    assert [p.record_start for p in picked] == [0, 40, 80, 120]


def test_the_search_refuses_when_the_footage_is_too_short() -> None:
    analysis = _analysis(0, np.ones(30), np.zeros(30, np.int64))
    with pytest.raises(ValueError, match="too little footage"):
        pick([analysis], [0, 25, 50], Fraction(25), Weights(1.0, 1.0, 0.0, 0.0, 0.0))


def test_novelty_is_high_where_new_colours_come_in() -> None:
    colours = np.zeros((300, 64), np.float32)
    colours[:150, 3] = 1.0
    colours[150:, 40] = 1.0
    found = novelty(colours, 25.0)
    assert found[150] == pytest.approx(1.0) and found[100] == pytest.approx(0.0)
    assert found[160] > found[290]  # the change fades as the new colours become the context

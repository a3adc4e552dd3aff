"""How good the harmony is, on held-out chorales, beside the rule-based baseline (numpy only).

Each held-out chorale's soprano is harmonised the way the server does it (bar by bar,
through :class:`harmony.Harmoniser`), and by :func:`harmony_baseline.baseline_voicing`;
Bach's own alto, tenor and bass are the reference. Per step where all four of Bach's
voices sound:

- parallel fifths and octaves (unisons included) per 100 steps, over the six voice pairs;
- the share of alto, tenor and bass notes inside the textbook choir ranges;
- chord-tone agreement: the share of the three voices' pitches whose pitch class is one
  Bach sounds at that step, and the share of steps whose bass has Bach's bass's class;
- voice crossings (a lower voice above a higher one) per 100 steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from .chorale_voices import Chorale
from .harmony import Harmoniser, Infer, spells_a_chord
from .harmony_baseline import baseline_voicing, choose_degree, triad
from .harmony_features import STEP
from .score import Note
from .tokens import NoteEvent

CHOIR_RANGES = {"alto": (55, 74), "tenor": (48, 67), "bass": (40, 62)}  # G3-D5, C3-G4, E2-D4
PAIRS = tuple(combinations(range(4), 2))
PAIR_NAMES = tuple(f"{'satb'[x]}{'satb'[y]}" for x, y in PAIRS)


def soprano_events(chorale: Chorale) -> list[NoteEvent]:
    """The soprano's notes back from the step grid (sixteenths), a new note at each onset."""
    events: list[NoteEvent] = []
    for t, (pitch, onset) in enumerate(zip(chorale.pitches[0].tolist(), chorale.onsets[0].tolist(),
                                           strict=True)):
        if pitch < 0:
            continue
        last = events[-1] if events else None
        if last and not onset and last.pitch == pitch and last.start + last.length == t * STEP:
            events[-1] = NoteEvent(pitch, last.start, last.length + STEP)
        else:
            events.append(NoteEvent(pitch, t * STEP, STEP))
    return events


def harmonise(infer: Infer, chorale: Chorale) -> np.ndarray:
    """(alto, tenor, bass) per step for the chorale's soprano, as the server makes them."""
    bar_steps = chorale.bar_steps
    steps = chorale.pitches.shape[1]
    bars = -(-steps // bar_steps)
    harmoniser = Harmoniser(infer, chorale.tonic, chorale.mode, chorale.metre, bars)
    events = soprano_events(chorale)
    voices = [harmoniser.bar(events, bar)[1] for bar in range(bars)]
    return np.concatenate(voices)[:steps]


def baseline(chorale: Chorale) -> np.ndarray:
    steps = chorale.pitches.shape[1]
    bar_steps = chorale.bar_steps
    last_bar = (-(-steps // bar_steps) - 1) * bar_steps
    beat = bar_steps // chorale.metre[0] if chorale.metre[1] == 4 else 4
    return baseline_voicing(chorale.pitches[0].astype(np.int64), chorale.tonic, chorale.mode, beat, last_bar)


def measure(soprano: np.ndarray, voices: np.ndarray, bach: np.ndarray) -> dict[str, Any]:
    """Figures for one harmonisation (``voices`` and ``bach`` [T, 3]) where Bach's four voices sound."""
    full = np.concatenate([soprano[:, None], voices], 1)
    sounding = (soprano >= 0) & (bach >= 0).all(1)
    moves = sounding[1:] & sounding[:-1]
    motion = full[1:] - full[:-1]
    parallels = {}
    for name, (x, y) in zip(PAIR_NAMES, PAIRS, strict=True):
        before, after = (full[:-1, x] - full[:-1, y]) % 12, (full[1:, x] - full[1:, y]) % 12
        same_way = (motion[:, x] != 0) & (np.sign(motion[:, x]) == np.sign(motion[:, y]))
        parallels[name] = int((moves & same_way & (before == after) & ((after == 0) | (after == 7))).sum())
    in_range = [(voices[sounding, row] >= low) & (voices[sounding, row] <= high)
                for row, (low, high) in enumerate(CHOIR_RANGES.values())]
    bach_classes = np.concatenate([soprano[:, None], bach], 1) % 12
    agree = (voices[sounding, :, None] % 12 == bach_classes[sounding, None, :]).any(-1)
    crossings = (np.diff(full[sounding], axis=1) > 0).any(1)
    return {"steps": int(sounding.sum()), "moves": int(moves.sum()), "parallels": parallels,
            "in_range": int(np.concatenate(in_range).sum()), "notes": int(3 * sounding.sum()),
            "agree": int(agree.sum()),
            "bass_agree": int((voices[sounding, 2] % 12 == bach[sounding, 2] % 12).sum()),
            "crossings": int(crossings.sum())}


def summarise(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    moves = sum(p["moves"] for p in parts) or 1
    steps = sum(p["steps"] for p in parts) or 1
    notes = sum(p["notes"] for p in parts) or 1
    per_pair = {name: round(100 * sum(p["parallels"][name] for p in parts) / moves, 3) for name in PAIR_NAMES}
    return {"parallels_per_100_steps": round(sum(per_pair.values()), 3), "parallels_by_pair": per_pair,
            "in_choir_range": round(sum(p["in_range"] for p in parts) / notes, 4),
            "chord_tone_agreement": round(sum(p["agree"] for p in parts) / notes, 4),
            "bass_agreement": round(sum(p["bass_agree"] for p in parts) / steps, 4),
            "crossings_per_100_steps": round(100 * sum(p["crossings"] for p in parts) / steps, 3)}


def evaluate_harmony(infer: Infer, held_out: Sequence[Chorale],
                     progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Model, baseline and Bach himself (the reference) on the held-out chorales."""
    rows: dict[str, list[dict[str, Any]]] = {"model": [], "baseline": [], "bach": []}
    for index, chorale in enumerate(held_out):
        soprano = chorale.pitches[0].astype(np.int64)
        bach = chorale.pitches[1:].T.astype(np.int64)
        rows["model"].append(measure(soprano, harmonise(infer, chorale), bach))
        rows["baseline"].append(measure(soprano, baseline(chorale), bach))
        rows["bach"].append(measure(soprano, bach, bach))
        if progress:
            progress(index + 1, len(held_out))
    figures = {name: summarise(parts) for name, parts in rows.items()}
    return {"held_out_chorales": len(held_out), **figures}


def session_infer(session: Any) -> Infer:
    """An ONNX Runtime session as the server's infer callable (names -> arrays)."""
    names = [o.name for o in session.get_outputs()]

    def infer(feed: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        return dict(zip(names, session.run(None, dict(feed)), strict=True))

    return infer


def tune_against_chords(notes: Sequence[Note], bar_beats: float, tonic: int, mode: str) -> dict[str, int]:
    """For a folk or celtic piece: how its tune sits on its chords part, and on the per-bar triad
    the old rule-based accompaniment chose (the triad covering most of the bar's tune).

    Counted over tune notes with a chord sounding at their start: ``in_chord``, the note is a
    chord tone; ``fits``, chord and note together are still one triad or seventh chord.
    """
    tune = [n for n in notes if n.voice == "melody"]
    chords = [n for n in notes if n.voice == "chords"]
    counts = {"notes": 0, "in_chord": 0, "fits": 0, "in_chord_triad": 0, "fits_triad": 0}
    for note in tune:
        sounding = {c.pitch % 12 for c in chords if c.start <= note.start + 1e-9 < c.start + c.length}
        if not sounding:
            continue
        bar = int(note.start // bar_beats + 1e-9)
        in_bar = np.array([n.pitch for n in tune
                           if bar * bar_beats <= n.start + 1e-9 < (bar + 1) * bar_beats])
        rule = set(triad(tonic, mode, choose_degree(in_bar, tonic, mode, False)))
        pitch_class = note.pitch % 12
        counts["notes"] += 1
        counts["in_chord"] += pitch_class in sounding
        counts["fits"] += spells_a_chord(sounding | {pitch_class})
        counts["in_chord_triad"] += pitch_class in rule
        counts["fits_triad"] += spells_a_chord(rule | {pitch_class})
    return counts

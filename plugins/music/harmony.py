"""Accompaniment from the chords a melody implies: one diatonic triad per bar (numpy-free)."""

from __future__ import annotations

from collections.abc import Sequence

from .score import Note
from .theory import MODE_STEPS
from .tokens import NoteEvent

# A little preference for the primary chords, so an ambiguous bar gets I, IV or V.
_DEGREE_BONUS = {0: 0.15, 3: 0.08, 4: 0.1}
CHORD_LOW, BASS_LOW = 48, 36  # lowest chord tone (C3) and bass note (C2)


def triad(tonic: int, mode: str, degree: int) -> tuple[int, int, int]:
    """Pitch classes of the diatonic triad on scale degree ``degree`` (0 = the tonic chord)."""
    steps = MODE_STEPS[mode]
    return tuple((tonic + steps[(degree + k) % 7]) % 12 for k in (0, 2, 4))  # type: ignore[return-value]


def choose_degree(events: Sequence[NoteEvent], tonic: int, mode: str, final: bool) -> int:
    """The triad whose tones cover most of the bar's melody (weighted by duration)."""
    if final:
        return 0
    weights = [0.0] * 12
    for event in events:
        if event.pitch >= 0:
            weights[event.pitch % 12] += event.length
    total = sum(weights) or 1.0
    best, best_score = 0, -1.0
    for degree in range(7):
        score = sum(weights[pc] for pc in triad(tonic, mode, degree)) / total + _DEGREE_BONUS.get(degree, 0.0)
        if score > best_score + 1e-9:
            best, best_score = degree, score
    return best


def accompaniment(events: Sequence[NoteEvent], bar: int, bar_beats: float, tonic: int, mode: str,
                  final: bool, pulse: float | None = None) -> list[Note]:
    """A triad (close position above C3) and its root in the bass for one bar; the triad held
    through the bar, or sounded every ``pulse`` beats (held on the final bar)."""
    root, third, fifth = triad(tonic, mode, choose_degree(events, tonic, mode, final))
    start = bar * bar_beats
    step = bar_beats if pulse is None or final else pulse
    notes = []
    for onset in range(max(1, round(bar_beats / step))):
        for pc in (root, third, fifth):
            pitch = CHORD_LOW + (pc - CHORD_LOW) % 12
            notes.append(Note(start + onset * step, step, pitch, 46 if onset == 0 else 40, "chords"))
    notes.append(Note(start, bar_beats, BASS_LOW + (root - BASS_LOW) % 12, 64, "bass"))
    return notes

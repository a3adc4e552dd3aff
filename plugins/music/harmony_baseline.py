"""The rule-based harmony the trained model is measured against (numpy only).

Root-position diatonic triads under the melody: on each beat the triad whose tones cover
most of the soprano's duration there (a little preference for I, IV and V), voiced with
the alto on the highest chord tone below the soprano, the tenor on the next one down and
the bass on the root below the tenor. This is what ``music.melody`` played before the
harmony model, one chord a bar.
"""

from __future__ import annotations

import numpy as np

from .harmony_features import RANGES
from .theory import MODE_STEPS

# A little preference for the primary chords, so an ambiguous beat gets I, IV or V.
_DEGREE_BONUS = {0: 0.15, 3: 0.08, 4: 0.1}


def triad(tonic: int, mode: str, degree: int) -> tuple[int, int, int]:
    """Pitch classes of the diatonic triad on scale degree ``degree`` (0 = the tonic chord)."""
    steps = MODE_STEPS[mode]
    return tuple((tonic + steps[(degree + k) % 7]) % 12 for k in (0, 2, 4))  # type: ignore[return-value]


def choose_degree(pitches: np.ndarray, tonic: int, mode: str, final: bool) -> int:
    """The triad whose tones cover most of ``pitches`` (one per step; -1 rests)."""
    if final:
        return 0
    weights = np.bincount(pitches[pitches >= 0] % 12, minlength=12).astype(float)
    total = weights.sum() or 1.0
    best, best_score = 0, -1.0
    for degree in range(7):
        score = sum(weights[pc] for pc in triad(tonic, mode, degree)) / total + _DEGREE_BONUS.get(degree, 0.0)
        if score > best_score + 1e-9:
            best, best_score = degree, score
    return best


def _below(pitch_classes: tuple[int, ...], ceiling: int) -> int:
    """The highest pitch below ``ceiling`` whose class is one of ``pitch_classes``."""
    return max(ceiling - 1 - ((ceiling - 1 - pc) % 12) for pc in pitch_classes)


def baseline_voicing(soprano: np.ndarray, tonic: int, mode: str, beat_steps: int, final_from: int
                     ) -> np.ndarray:
    """(alto, tenor, bass) per step, int [T, 3]: a root-position triad per beat of ``beat_steps``;
    steps from ``final_from`` on (the last bar) take the tonic chord."""
    steps = len(soprano)
    voices = np.zeros((steps, 3), np.int64)
    heard = soprano.copy()
    for t in range(steps):  # a rest keeps the last pitch heard as the ceiling
        if heard[t] < 0:
            heard[t] = heard[t - 1] if t else 72
    for start in range(0, steps, beat_steps):
        window = slice(start, start + beat_steps)
        chord = triad(tonic, mode, choose_degree(soprano[window], tonic, mode, start >= final_from))
        ceiling = int(heard[start])
        alto = _below(chord, ceiling)
        tenor = _below(chord, alto)
        bass = _below((chord[0],), tenor)
        if bass < RANGES["bass"][0] + 5:
            bass += 12 if bass + 12 < tenor else 0
        voices[window] = (alto, tenor, bass)
    return voices

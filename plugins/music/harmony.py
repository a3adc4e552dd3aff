"""Harmony under a melody from the trained model, bar by bar as the melody is composed (no torch).

:class:`Harmoniser` feeds each finished bar's melody to ``music.harmony`` (one ONNX run
per bar, the recurrent state carried over) and decodes alto, tenor and bass with
:mod:`harmony_decoder`. :func:`arrange` turns them into the band's parts: a chorale's
alto and tenor sung by the chords part and its bass line by the bass; for folk and celtic
the chord the three voices spell on each beat, voiced close above C3, and the bass line
on the beats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .harmony_decoder import decode
from .harmony_features import HIDDEN, LOWER_VOICES, MINOR_LIKE, STEP, bar_steps, step_features
from .score import Note
from .tokens import NoteEvent

HARMONY_MODEL = "music.harmony"
CHORD_LOW = 48  # lowest chord tone of a folk or celtic chord (C3)
BASS_HIGH = 52  # highest bass note under a folk or celtic chord (E3)
# A moving bass line carries more energy than the one held note a bar it replaced: 58 keeps it 5 dB
# or more under the tune in every style (64 left celtic's cello 4.8 dB and chorale's strings 4.9 under).
BASS_LINE_VELOCITY = 58
Infer = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


class Harmoniser:
    """One piece's harmony: call :meth:`bar` with each bar's melody, in order."""

    def __init__(self, infer: Infer, tonic: int, mode: str, metre: tuple[int, int], bars: int) -> None:
        self.infer, self.tonic, self.metre, self.bars = infer, tonic, metre, bars
        self.minor = MINOR_LIKE[mode]
        self.bar_sixteenths = metre[0] * 16 // metre[1]
        self.state = np.zeros((1, 1, HIDDEN), np.float32)
        self.previous: tuple[np.ndarray, int] | None = None
        self.started = False  # the tune has sounded: a pickup's leading rest is not accompanied

    def bar(self, events: Sequence[NoteEvent], bar: int) -> tuple[np.ndarray, np.ndarray]:
        """The soprano per eighth step of bar ``bar`` and the (alto, tenor, bass) under it, [T] and [T, 3];
        -1 (silent) before the tune's first note."""
        steps = bar_steps(events, bar * self.bar_sixteenths, self.bar_sixteenths)
        count = len(steps.pitches)
        features = step_features(steps.pitches, steps.onsets, self.tonic, self.metre, count, self.bars, bar)
        feed: dict[str, np.ndarray] = {name: values[None, :] for name, values in features.items()}
        feed["tonic"] = np.array([self.tonic], np.int64)
        feed["minor"] = np.array([self.minor], np.int64)
        feed["state"] = self.state
        out = self.infer(feed)
        self.state = np.asarray(out["next_state"], np.float32)
        voices = decode({voice: np.asarray(out[voice])[0] for voice in LOWER_VOICES}, steps.pitches,
                        self.previous)
        sounding = np.flatnonzero(steps.pitches >= 0)
        if len(sounding):
            self.previous = (voices[-1].copy(), int(steps.pitches[sounding[-1]]))
        elif self.previous is not None:
            self.previous = (voices[-1].copy(), self.previous[1])
        if not self.started:
            first = int(sounding[0]) if len(sounding) else count
            voices[:first] = -1
            self.started = first < count
        return steps.pitches, voices


def _held(pitches: Sequence[int], starts: Sequence[float], end: float) -> list[tuple[float, float, int]]:
    """(start, length, pitch) with repeats of a pitch merged into one held note."""
    notes: list[tuple[float, float, int]] = []
    for index, (start, pitch) in enumerate(zip(starts, pitches, strict=True)):
        stop = starts[index + 1] if index + 1 < len(starts) else end
        if notes and notes[-1][2] == pitch and abs(notes[-1][0] + notes[-1][1] - start) < 1e-9:
            notes[-1] = (notes[-1][0], notes[-1][1] + stop - start, pitch)
        else:
            notes.append((start, stop - start, pitch))
    return notes


def low_bass(pitch: int) -> int:
    """A bass line an octave down where Bach's bass sits above E3: a band's bass plays below its chords."""
    return pitch - 12 if pitch > BASS_HIGH else pitch


def close_chord(pitch_classes: Sequence[int]) -> list[int]:
    """Distinct pitch classes as pitches in the octave from C3."""
    return sorted({CHORD_LOW + (pc - CHORD_LOW) % 12 for pc in pitch_classes})


def arrange(voices: np.ndarray, soprano: np.ndarray, bar_start: float, bar_beats: float, style: str,
            pulse: float) -> list[Note]:
    """The bar's chords and bass parts (beats from the piece's start) from its decoded voices and the
    tune's pitch per step (``soprano``, -1 rests).

    Chorale: alto and tenor as the chords part, bass as the bass part, each step's pitch held
    while it repeats. Folk and celtic: on each beat (``pulse``) the chord of the lower voices at
    one of the beat's steps (:func:`beat_choice`) with the tune's tone there when it completes
    the chord, close above C3 and struck again every beat, and the bass of that step.
    """
    step_beats = STEP / 4.0
    end = bar_start + bar_beats
    notes: list[Note] = []
    if style == "chorale":
        starts = [bar_start + t * step_beats for t in range(len(voices))]
        for row, voice, velocity in ((0, "chords", 52), (1, "chords", 48), (2, "bass", BASS_LINE_VELOCITY)):
            for start, length, pitch in _held(voices[:, row].tolist(), starts, end):
                if pitch >= 0:
                    notes.append(Note(start, length, pitch, velocity, voice))
        return notes
    beat_steps = max(1, round(pulse / step_beats))
    onsets = list(range(0, len(voices), beat_steps))
    starts = [bar_start + t * step_beats for t in onsets]
    # Each beat's chord is the decoded chord of one of its steps: the one the beat's tune fits best.
    # A beat that starts before the tune's first note (a pickup's) is left silent.
    chosen = [t + beat_choice(voices[t:t + beat_steps], soprano[t:t + beat_steps]) if voices[t, 0] >= 0
              else t for t in onsets]
    for index, (t, start) in enumerate(zip(chosen, starts, strict=True)):
        stop = starts[index + 1] if index + 1 < len(starts) else end
        if voices[t, 0] >= 0:
            tones = {pitch % 12 for pitch in voices[t].tolist()}
            beat = soprano[onsets[index]:onsets[index] + beat_steps]
            fuller = tones | {int(soprano[t]) % 12}
            if soprano[t] >= 0 and spells_a_chord(fuller) and _fit(fuller, beat) >= _fit(tones, beat):
                tones = fuller  # the tone the tune sings there, which the voices leave out
            for pitch in close_chord(sorted(tones)):
                notes.append(Note(start, stop - start, pitch, 46 if index == 0 else 40, "chords"))
    for start, length, pitch in _held([low_bass(int(voices[t, 2])) for t in chosen], starts, end):
        if pitch >= 0:
            notes.append(Note(start, length, pitch, BASS_LINE_VELOCITY, "bass"))
    return notes


# Triads (major, minor, diminished) and their sevenths as pitch-class sets on every root.
_SHAPES = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 7, 10), (0, 3, 7, 10), (0, 3, 6, 10), (0, 4, 7, 11))
CHORDS = tuple(frozenset((root + i) % 12 for i in shape) for root in range(12) for shape in _SHAPES)


def spells_a_chord(pitch_classes: set[int]) -> bool:
    """Whether the pitch classes are all tones of one triad or seventh chord."""
    return any(pitch_classes <= chord for chord in CHORDS)


def beat_choice(voices: np.ndarray, soprano: np.ndarray) -> int:
    """Which step's chord to sound for a whole beat: the one that most of the beat's tune notes
    complete to a triad or seventh (the first such step on a tie)."""
    best, best_score = 0, -1
    for step, chord in enumerate(voices.tolist()):
        if chord[0] < 0:
            continue  # before the tune's first note: nothing sounds there
        score = _fit({pitch % 12 for pitch in chord}, soprano)
        if score > best_score:
            best, best_score = step, score
    return best


def _fit(tones: set[int], soprano: np.ndarray) -> int:
    """How many of the tune's steps complete ``tones`` to a triad or seventh."""
    return sum(spells_a_chord(tones | {int(pitch) % 12}) for pitch in soprano if pitch >= 0)

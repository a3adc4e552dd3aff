"""What the harmony model reads and writes, per eighth note (numpy only: training and serving).

The model runs over a piece bar by bar, carrying a recurrent state, so a streamed piece is
harmonised as its bars are composed. At each eighth-note step it reads the soprano (the
melody) there: its pitch and scale degree, whether a note starts, the degrees of the next
two steps (only inside the current bar: the next bar may not be composed yet), the step's
metrical accent (downbeat, another beat, between beats) and how many bars are left; per
piece the tonic and whether the key is major or minor. The accent, not the position in the
bar or the metre, is what carries over from Bach's 4/4 and 3/4 to the 6/8 and 9/8 of fiddle
tunes: the beat is a dotted quarter there, as the melody sampler counts it. It writes a
distribution over the alto's, tenor's and bass's pitch at that step, which
:mod:`harmony_decoder` turns into voices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .sampler import beat_length
from .tokens import NoteEvent

STEP = 2  # sixteenths per step: eighth notes
SOPRANO_LOW, SOPRANO_HIGH = 36, 95  # the melody tokens' range
SOPRANO_REST = SOPRANO_HIGH - SOPRANO_LOW + 1  # the soprano index of a rest
REST_DEGREE, BEYOND_BAR = 12, 13  # degree indices that are not scale degrees
DOWNBEAT, BEAT, BETWEEN = 0, 1, 2  # metrical accent of a step
BARS_LEFT_CLIP = 3
# Output pitch ranges (MIDI, both ends included): Bach's voices with room for transposition.
RANGES: dict[str, tuple[int, int]] = {"alto": (50, 79), "tenor": (43, 72), "bass": (31, 64)}
LOWER_VOICES = ("alto", "tenor", "bass")
HIDDEN = 128
STEP_INPUTS = ("soprano", "degree", "ahead1", "ahead2", "onset", "accent", "bars_left")
PIECE_INPUTS = ("tonic", "minor")
# Values each index input takes (the network's embedding table sizes).
INPUT_SIZES = {"soprano": SOPRANO_REST + 1, "degree": 13, "ahead1": 14, "ahead2": 14, "onset": 2,
               "accent": 3, "bars_left": BARS_LEFT_CLIP + 1, "tonic": 12, "minor": 2}
# Modes outside Bach's two are harmonised as the one sharing their third.
MINOR_LIKE = {"major": 0, "mixolydian": 0, "minor": 1, "dorian": 1}


def classes(voice: str) -> int:
    low, high = RANGES[voice]
    return high - low + 1


@dataclass(frozen=True)
class BarSteps:
    """A line on the step grid: pitch (-1 rest) and onset per step."""

    pitches: np.ndarray  # int [steps]
    onsets: np.ndarray  # bool [steps]


def bar_steps(events: Sequence[NoteEvent], bar_start: int, bar_sixteenths: int) -> BarSteps:
    """The soprano of one bar (events in sixteenths from the piece's start) on eighth steps."""
    return on_steps(events, bar_start, bar_sixteenths // STEP)


def on_steps(events: Sequence[NoteEvent], start: int, steps: int) -> BarSteps:
    """``steps`` eighth steps of a line from sixteenth ``start``: the pitch sounding at each step
    (-1: rest) and whether a note starts on it."""
    pitches = np.full(steps, -1, np.int64)
    onsets = np.zeros(steps, bool)
    for event in events:
        first = -(-(event.start - start) // STEP)
        last = min(steps, -(-(event.start + event.length - start) // STEP))
        if max(first, 0) < last:
            pitches[max(first, 0):last] = event.pitch
            if first >= 0 and (event.start - start) % STEP == 0 and event.pitch >= 0:
                onsets[first] = True
    return BarSteps(pitches, onsets)


def step_features(soprano: np.ndarray, onsets: np.ndarray, tonic: int, metre: tuple[int, int],
                  bar_steps_count: int, total_bars: int, first_bar: int = 0) -> dict[str, np.ndarray]:
    """int64 [steps] per step input for a run of whole bars starting at bar ``first_bar``."""
    steps = len(soprano)
    sounding = soprano >= 0
    index = np.where(sounding, np.clip(soprano - SOPRANO_LOW, 0, SOPRANO_REST - 1), SOPRANO_REST)
    degree = np.where(sounding, (soprano - tonic) % 12, REST_DEGREE)
    position = np.arange(steps) % bar_steps_count
    bar = first_bar + np.arange(steps) // bar_steps_count
    beat_steps = max(1, beat_length(metre) // STEP)
    accent = np.where(position == 0, DOWNBEAT, np.where(position % beat_steps == 0, BEAT, BETWEEN))
    features = {"soprano": index, "degree": degree, "onset": onsets.astype(np.int64), "accent": accent,
                "bars_left": np.clip(total_bars - 1 - bar, 0, BARS_LEFT_CLIP)}
    for ahead in (1, 2):
        shifted = np.full(steps, BEYOND_BAR)
        shifted[:steps - ahead] = degree[ahead:]
        shifted[position + ahead >= bar_steps_count] = BEYOND_BAR  # the next bar is not known yet
        features[f"ahead{ahead}"] = shifted
    return {name: features[name].astype(np.int64) for name in STEP_INPUTS}


def target_index(pitches: np.ndarray, voice: str, ignore: int = -100) -> np.ndarray:
    """Class per step for a voice's pitches; ``ignore`` for rests and pitches outside its range."""
    low, high = RANGES[voice]
    inside = (pitches >= low) & (pitches <= high)
    return np.where(inside, pitches - low, ignore).astype(np.int64)

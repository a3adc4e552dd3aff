"""Keys, modes and scales: what "in the key" means for each style (numpy-free, served)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_ALIASES = {"Db": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10, "Cb": 11, "B#": 0, "E#": 5, "Fb": 4}

# The diatonic collection of each mode, as semitones above the tonic.
MODE_STEPS: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
MODES = tuple(MODE_STEPS)
# Minor melodies raise the sixth and seventh on the way up (melodic minor) and the
# seventh as a leading tone (harmonic minor): both are in the key, not chromatic.
_MINOR_EXTRA = (9, 11)
# Modes each style is trained in. Bach's chorales are major/minor; the folk and fiddle
# collections hold dorian and mixolydian tunes too, which are scored against their own
# scales rather than forced into major or minor.
STYLE_MODES: dict[str, tuple[str, ...]] = {
    "chorale": ("major", "minor"),
    "folk": ("major", "minor", "dorian", "mixolydian"),
    "celtic": ("major", "minor", "dorian", "mixolydian"),
}
MODE_FIT = 0.9  # share of a melody's duration inside the mode's scale to call it that mode


class _Timed(Protocol):
    @property
    def pitch(self) -> int: ...

    @property
    def length(self) -> int: ...


def pitch_class(name: str) -> int:
    """'D' -> 2, 'Bb' -> 10, 'F#' -> 6; raises ValueError for anything else."""
    key = name.strip()
    if key[:1].islower():
        key = key[:1].upper() + key[1:]
    if key in PITCH_NAMES:
        return PITCH_NAMES.index(key)
    if key in _ALIASES:
        return _ALIASES[key]
    raise ValueError(f"unknown key {name!r}; use one of {', '.join(PITCH_NAMES)}")


def scale_pitch_classes(tonic: int, mode: str) -> frozenset[int]:
    """Pitch classes that count as in the key (minor includes its raised 6th and 7th)."""
    steps = MODE_STEPS[mode] + (_MINOR_EXTRA if mode == "minor" else ())
    return frozenset((tonic + s) % 12 for s in steps)


def in_scale_fraction(pitches: Iterable[int], tonic: int, mode: str) -> float:
    """Share of notes (not of time) whose pitch class is in the key; 1.0 for no notes."""
    scale = scale_pitch_classes(tonic, mode)
    values = list(pitches)
    return sum(p % 12 in scale for p in values) / len(values) if values else 1.0


def detect_mode(events: Sequence[_Timed], tonic: int, allowed: Sequence[str]) -> str | None:
    """The allowed mode whose scale on ``tonic`` holds most of the melody's duration.

    Earlier modes in ``allowed`` win ties (major before mixolydian, minor before dorian:
    a tune that never sounds the degree telling them apart is called by the common name).
    None when no mode holds ``MODE_FIT`` of the duration (a modulating or chromatic tune,
    or one whose last note is not its tonic).
    """
    weights = [0.0] * 12
    for event in events:
        if event.pitch >= 0:
            weights[(event.pitch - tonic) % 12] += event.length
    total = sum(weights)
    if total == 0:
        return None
    best, best_share = None, 0.0
    for mode in allowed:
        # Detection counts the leading tone in minor but not the raised sixth, which is
        # what tells dorian from minor.
        steps = MODE_STEPS[mode] + ((11,) if mode == "minor" else ())
        share = sum(weights[s] for s in steps) / total
        if share > best_share + 1e-9:
            best, best_share = mode, share
    return best if best_share >= MODE_FIT else None

"""The token encoding of a melody (numpy only: shared by training and the served sampler).

A melody is a sequence of tokens on a sixteenth-note grid::

    BAR  pitch dur  pitch dur ...  BAR  TIE dur  pitch dur ...  END

- ``BAR`` opens every bar (the first token of every sequence).
- A note is two tokens: its pitch (MIDI 36..95, or ``REST``) then its duration in
  sixteenths (1..24). A note never crosses a bar line: the part after it is ``TIE`` +
  duration in the next bar, which the decoder merges back into one note.
- ``END`` follows the last note.

Besides the token, every step gives the network the clock: the position in the bar (in
sixteenths) where the next note would start, and how many bars are left (0..8, clipped),
so it can learn metre and cadences. The piece's style, tonic, mode and metre condition
every step. Keys are learnt by transposing each training piece into all twelve keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD, BAR, END, REST, TIE = 0, 1, 2, 3, 4
PITCH_LOW, PITCH_HIGH = 36, 95  # MIDI range of the pitch tokens (C2..B6)
PITCH_BASE = 5
DURATION_BASE = PITCH_BASE + (PITCH_HIGH - PITCH_LOW + 1)
MAX_DURATION = 24  # sixteenths: one bar of 12/8 or 3/2
VOCABULARY = DURATION_BASE + MAX_DURATION
BARS_LEFT_CLIP = 8

STYLES = ("chorale", "folk", "celtic")
# Metres trained; the first few of each style are what its corpus mostly uses.
METRES: tuple[tuple[int, int], ...] = (
    (4, 4), (3, 4), (2, 4), (6, 8), (2, 2), (3, 2), (9, 8), (12, 8), (6, 4))


@dataclass(frozen=True)
class NoteEvent:
    """A note (pitch >= 0) or rest (pitch -1): start and length in sixteenths from bar 0."""

    pitch: int
    start: int
    length: int


@dataclass(frozen=True)
class Melody:
    """One monophonic piece: conditioning facts and its events (gap-free, in order)."""

    id: str
    style: str
    metre: tuple[int, int]
    tonic: int  # pitch class
    mode: str
    events: tuple[NoteEvent, ...]


def bar_length(metre: tuple[int, int]) -> int:
    """Sixteenths in one bar of ``metre`` (6/8 -> 12)."""
    return metre[0] * 16 // metre[1]


def pitch_token(pitch: int) -> int:
    return REST if pitch < 0 else PITCH_BASE + pitch - PITCH_LOW


def duration_token(length: int) -> int:
    return DURATION_BASE + length - 1


def is_pitch_slot(token: int) -> bool:
    """Tokens that start a note: a pitch, REST or TIE."""
    return token in (REST, TIE) or PITCH_BASE <= token < DURATION_BASE


@dataclass
class Encoded:
    """A tokenised melody with the per-step clock features the network reads."""

    tokens: np.ndarray  # int64 [T]
    positions: np.ndarray  # int64 [T]: position in the bar (sixteenths) after token t
    bars_left: np.ndarray  # int64 [T]: bars left after token t, clipped to BARS_LEFT_CLIP


def transpose_events(events: tuple[NoteEvent, ...], semitones: int) -> tuple[NoteEvent, ...]:
    return tuple(NoteEvent(e.pitch + semitones if e.pitch >= 0 else -1, e.start, e.length) for e in events)


def fits_range(events: tuple[NoteEvent, ...]) -> bool:
    pitches = [e.pitch for e in events if e.pitch >= 0]
    return bool(pitches) and min(pitches) >= PITCH_LOW and max(pitches) <= PITCH_HIGH


def _fill_gaps(events: tuple[NoteEvent, ...]) -> list[NoteEvent]:
    """Rests where nothing sounds (a pickup's empty start, a gap in the source)."""
    filled: list[NoteEvent] = []
    time = 0
    for event in events:
        if event.start < time:
            raise ValueError(f"events overlap at sixteenth {event.start}")
        if event.start > time:
            filled.append(NoteEvent(-1, time, event.start - time))
        filled.append(event)
        time = event.start + event.length
    return filled


def encode(events: tuple[NoteEvent, ...], metre: tuple[int, int]) -> Encoded:
    """Tokens and clock features for a gap-free event list (raises if off range)."""
    bar16 = bar_length(metre)
    end = events[-1].start + events[-1].length
    bars = -(-end // bar16)
    tokens: list[int] = [BAR]
    clock: list[tuple[int, int]] = [(0, bars)]  # (position, bars left incl. this one)

    def add(token: int, time: int) -> None:
        tokens.append(token)
        bar, position = divmod(time, bar16)
        clock.append((position, bars - bar))

    time = 0
    for event in _fill_gaps(events):
        if event.pitch >= 0 and not PITCH_LOW <= event.pitch <= PITCH_HIGH:
            raise ValueError(f"pitch {event.pitch} outside {PITCH_LOW}..{PITCH_HIGH}")
        remaining, first = event.length, True
        while remaining > 0:
            room = bar16 - time % bar16
            part = min(room, remaining)
            add(pitch_token(event.pitch) if first or event.pitch < 0 else TIE, time)
            time += part
            add(duration_token(part), time)
            remaining -= part
            first = False
            if time % bar16 == 0 and time < end:
                add(BAR, time)
    add(END, time)
    positions = np.array([p for p, _ in clock], np.int64)
    bars_left = np.clip(np.array([b for _, b in clock], np.int64), 0, BARS_LEFT_CLIP)
    return Encoded(np.array(tokens, np.int64), positions, bars_left)


def decode(tokens: list[int] | np.ndarray) -> list[NoteEvent]:
    """Events (start, length in sixteenths) back from tokens; ties merged into one note."""
    events: list[NoteEvent] = []
    time, pending = 0, None
    for token in (int(t) for t in tokens):
        if token == END:
            break
        if is_pitch_slot(token):
            pending = token
        elif token >= DURATION_BASE and pending is not None:
            length = token - DURATION_BASE + 1
            if pending == TIE and events and events[-1].start + events[-1].length == time:
                last = events[-1]
                events[-1] = NoteEvent(last.pitch, last.start, last.length + length)
            else:
                pitch = -1 if pending in (REST, TIE) else pending - PITCH_BASE + PITCH_LOW
                events.append(NoteEvent(pitch, time, length))
            time += length
            pending = None
    return events

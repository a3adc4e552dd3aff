"""A pickup's leading rest, which no audio should play as silence.

The sampler often opens bar 0 with a rest and puts the tune's first notes at the end of the
bar (an anacrusis), and the band does not play under it. Played as written, a one-shot would
open with up to a bar of digital silence and a loop would drop out there on every repeat.

- A one-shot starts at the tune's first note (:func:`trim_lead`): notes before it are dropped
  (celtic's bodhrán strokes under the rest) and ``Piece.start`` says where the output begins;
  a MIDI file then opens with the pickup as a bar of its own (:func:`pickup_signature`).
- In a loop the rest is the end of the previous cycle (:func:`hold_over_loop_point`): each
  layer's last notes are held past the loop point until that layer comes in again, and the
  performer wraps what sounds past the end into the start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .score import Note, Piece

__all__ = ["hold_over_loop_point", "pickup_signature", "trim_lead"]

HELD_VOICES = ("melody", "chords", "bass")  # the drum plays under a pickup already
_EPSILON = 1e-9


def trim_lead(piece: Piece, notes: Sequence[Note], started: bool) -> tuple[list[Note], bool]:
    """One bar's notes of a one-shot, without those before the tune's first note; sets
    ``piece.start`` when this bar holds that note. ``started``: an earlier bar held it."""
    if started:
        return list(notes), True
    tune = [note.start for note in notes if note.voice == "melody"]
    if not tune:
        return [], False  # no tune yet: nothing sounds before it
    piece.start = min(tune)
    return [note for note in notes if note.start >= piece.start - _EPSILON], True


def hold_over_loop_point(piece: Piece, notes: Sequence[Note]) -> list[Note]:
    """A loop's last bar with each held layer's final notes lengthened past the loop point to where
    that layer first sounds (``piece.notes`` and ``notes`` together hold every note): the melody's
    last note (through any rest after it), the chords' and bass's notes that reach the bar line."""
    everything = [*piece.notes, *notes]
    out = list(notes)
    end = piece.beats
    for voice in HELD_VOICES:
        starts = [note.start for note in everything if note.voice == voice]
        if not starts or min(starts) <= _EPSILON:
            continue  # the layer sounds from the loop point on: nothing to hold
        until = end + min(starts)
        mine = [index for index, note in enumerate(out) if note.voice == voice]
        if voice == "melody":
            if not mine:
                continue  # the tune rests through the whole last bar: a rest the composer chose
            last = max(mine, key=lambda index: out[index].start)
            held = [last]
        else:
            held = [index for index in mine if abs(out[index].start + out[index].length - end) < _EPSILON]
        for index in held:
            out[index] = replace(out[index], length=until - out[index].start)
    return out


def pickup_signature(beats: float, denominator: int) -> tuple[int, int]:
    """A time signature ``beats`` quarter notes long for a pickup bar: in the metre's own unit where
    it divides (a quarter's pickup in 4/4 is 1/4, in 6/8 2/8), else in eighths or sixteenths."""
    sixteenths = round(beats * 4)
    for unit in (denominator, 8, 16):
        if sixteenths * unit % 16 == 0:
            return sixteenths * unit // 16, unit
    raise ValueError(f"a pickup of {beats} beats is not on the sixteenth-note grid")

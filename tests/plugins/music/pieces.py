"""Seeded example pieces for the performer, loudness, MIDI and audio-format tests."""

from __future__ import annotations

import numpy as np

from museforge.plugins.music.score import Metre, Note, Piece

BAND = {"melody": 19, "chords": 52, "bass": 48}  # Church Organ, Choir Aahs, String Ensemble 1


def song(melody_program: int = 19, loop: bool = False, bars: int = 16, bpm: float = 128.0,
         metre: Metre | None = None, seed: int = 1) -> Piece:
    """A melody in eighths over a held triad and a two-note bass each bar (16 bars at 128 ≈ 30 s)."""
    metre = metre or Metre(4, 4)
    rng = np.random.default_rng(seed)
    notes: list[Note] = []
    bar_beats = metre.bar_beats
    for bar in range(bars):
        start = bar * bar_beats
        for k in range(int(bar_beats * 2)):
            notes.append(Note(start + k * 0.5, 0.5, int(rng.integers(60, 84)), int(rng.integers(70, 110))))
        root = int(rng.choice([48, 53, 55, 57]))
        for offset in (0, 4, 7):
            notes.append(Note(start, bar_beats, root + offset + 12, 70, "chords"))
        notes.append(Note(start, bar_beats / 2, root - 12, 90, "bass"))
        notes.append(Note(start + bar_beats / 2, bar_beats / 2, root - 5, 90, "bass"))
    return Piece(metre, bpm, bars, 0, "major", {**BAND, "melody": melody_program}, loop, notes)


def by_bar(piece: Piece) -> list[list[Note]]:
    """The piece's notes grouped by the bar they start in, in the order they were written."""
    bars: list[list[Note]] = [[] for _ in range(piece.bars)]
    for note in piece.notes:
        bars[int(note.start // piece.metre.bar_beats)].append(note)
    return bars

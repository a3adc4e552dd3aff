"""Melodies from music21's packaged corpus (export path: needs music21, never served).

Three styles, each a real collection that ships inside the music21 wheel:

- ``chorale``: Bach's four-part chorales (``bach/*.mxl``); the melody is the soprano, and
  the tonic is the bass's last note (chorales end on a root-position tonic chord, while the
  soprano may end on the third).
- ``folk``: the German-language books of the Essen folksong collection (``essenFolksong``:
  altdeu, ballad, boehme, dva, erk, fink, kinder, lot, zuccal, read in file order until
  the cap in dataset.LIMITS). The Chinese (han) and other books are left out so the style
  is one tradition.
- ``celtic``: O'Neill's *Music of Ireland* (1850) and Ryan's Mammoth Collection (1883)
  fiddle tunes.

Each melody becomes a :class:`Melody`: notes on a sixteenth-note grid with the pickup
placed in its bar, tied notes merged, grace notes dropped, chords reduced to their top
note. Pieces that do not fit the grid (triplets), change metre, or whose mode is not one
the style is trained in are skipped and counted.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .theory import STYLE_MODES, detect_mode
from .tokens import METRES, Melody, NoteEvent

log = logging.getLogger(__name__)

FOLK_BOOKS = ("altdeu", "ballad", "boehme", "dva", "erk", "fink", "kinder", "lot", "zuccal")
HOLD_OUT_PERCENT = 10  # whole pieces, chosen by a hash of their id
GRID = 4  # positions per quarter note: a sixteenth-note grid


@dataclass
class ParseReport:
    """What the parse kept and why it skipped the rest, per style."""

    kept: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # "style: reason"


def is_held_out(piece_id: str) -> bool:
    """Hold-out membership from the id alone, so it never depends on parse order."""
    digest = hashlib.sha256(piece_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HOLD_OUT_PERCENT


def _corpus_paths(part: str) -> list[Path]:
    from music21 import corpus

    paths = [Path(p) for p in corpus.corpora.CoreCorpus().getPaths()]
    return sorted(p for p in paths if f"/{part}/" in p.as_posix())


def _on_grid(value: float) -> int | None:
    scaled = value * GRID
    nearest = round(scaled)
    return int(nearest) if abs(scaled - nearest) < 1e-3 else None


def _melody_events(part: Any, bar16: int) -> tuple[list[NoteEvent], str | None]:
    """Notes and rests of one part on the grid, pickup placed in its bar; or a skip reason."""
    from music21 import chord, note

    measures = list(part.getElementsByClass("Measure"))
    if not measures:
        return [], "no measures"
    first = measures[0]
    first_length = _on_grid(float(first.highestTime))
    shift = 0
    if first_length is not None and 0 < first_length < bar16:
        shift = bar16 - first_length  # a pickup: its notes sit at the end of bar 0
    events: list[NoteEvent] = []
    for element in part.flatten().notesAndRests:
        length = float(element.quarterLength)
        if length == 0:
            continue  # grace note
        start, duration = _on_grid(float(element.offset)), _on_grid(length)
        if start is None or duration is None or duration == 0:
            return [], "off the sixteenth grid"
        if isinstance(element, note.Rest):
            pitch = -1
        elif isinstance(element, chord.Chord):
            pitch = max(p.midi for p in element.pitches)
        else:
            pitch = int(element.pitch.midi)
        start += shift
        previous = events[-1] if events else None
        tied = element.tie is not None and element.tie.type in ("stop", "continue")
        if previous and tied and previous.pitch == pitch and previous.start + previous.length == start:
            events[-1] = NoteEvent(pitch, previous.start, previous.length + duration)
        elif previous and previous.pitch == -1 and pitch == -1 and previous.start + previous.length == start:
            events[-1] = NoteEvent(-1, previous.start, previous.length + duration)
        else:
            events.append(NoteEvent(pitch, start, duration))
    while events and events[-1].pitch == -1:
        events.pop()  # a trailing rest is silence, not music
    if len([e for e in events if e.pitch >= 0]) < 8:
        return [], "fewer than 8 notes"
    return events, None


def _metre(part: Any) -> tuple[tuple[int, int] | None, str | None]:
    signatures = {(ts.numerator, ts.denominator)
                  for ts in part.recurse().getElementsByClass("TimeSignature")}
    if len(signatures) != 1:
        return None, "no or several time signatures"
    metre = signatures.pop()
    if metre not in METRES:
        return None, f"metre {metre[0]}/{metre[1]} not trained"
    return metre, None


def melody_from_part(piece_id: str, style: str, part: Any,
                     tonic_hint: int | None = None) -> tuple[Melody | None, str | None]:
    """One part as a :class:`Melody` (or None and the reason it was skipped)."""
    metre, problem = _metre(part)
    if metre is None:
        return None, problem
    bar16 = metre[0] * 16 // metre[1]
    events, problem = _melody_events(part, bar16)
    if problem:
        return None, problem
    notes = [e for e in events if e.pitch >= 0]
    tonic = tonic_hint if tonic_hint is not None else notes[-1].pitch % 12
    mode = detect_mode(events, tonic, STYLE_MODES[style])
    if mode is None:
        return None, "mode not trained for the style"
    return Melody(piece_id, style, metre, tonic, mode, tuple(events)), None


def _chorales() -> Iterator[tuple[str, Any, int | None]]:
    from music21 import converter

    for path in _corpus_paths("bach"):
        if path.suffix not in (".mxl", ".xml"):
            continue
        score: Any = converter.parse(path)
        parts = list(score.parts)
        if len(parts) != 4:
            continue
        bass = [n for n in parts[-1].flatten().notes if n.quarterLength > 0]
        tonic = None
        if bass:
            last = bass[-1]
            tonic = int(max(last.pitches).midi) % 12  # a note or a chord: both have pitches
        yield f"bach/{path.stem}", parts[0], tonic


def _abc_tunes(paths: list[Path], prefix: str) -> Iterator[tuple[str, Any, int | None]]:
    from music21 import converter, stream

    for path in paths:
        parsed: Any = converter.parse(path)
        scores: list[Any] = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
        for number, score in enumerate(scores):
            if score.parts:
                yield f"{prefix}/{path.stem}#{number}", score.parts[0], None


def _folk() -> Iterator[tuple[str, Any, int | None]]:
    paths = [p for p in _corpus_paths("essenFolksong")
             if any(p.stem.startswith(book) for book in FOLK_BOOKS)]
    return _abc_tunes(paths, "essen")


def _celtic() -> Iterator[tuple[str, Any, int | None]]:
    yield from _abc_tunes(_corpus_paths("oneills1850"), "oneills1850")
    yield from _abc_tunes(_corpus_paths("ryansMammoth"), "ryansMammoth")


SOURCES: dict[str, Callable[[], Iterator[tuple[str, Any, int | None]]]] = {
    "chorale": _chorales,
    "folk": _folk,
    "celtic": _celtic,
}


def parse_style(style: str, limit: int | None, report: ParseReport,
                progress: Callable[[str, int], None] | None = None) -> list[Melody]:
    """Up to ``limit`` melodies of one style, in corpus order."""
    melodies: list[Melody] = []
    for piece_id, part, tonic in SOURCES[style]():
        try:
            melody, problem = melody_from_part(piece_id, style, part, tonic)
        except Exception as error:  # a malformed tune in the corpus: count it, go on
            melody, problem = None, f"parse error {type(error).__name__}"
        if melody is None:
            report.skipped[f"{style}: {problem}"] += 1
            continue
        melodies.append(melody)
        report.kept[style] += 1
        if progress:
            progress(style, len(melodies))
        if limit is not None and len(melodies) >= limit:
            break
    return melodies

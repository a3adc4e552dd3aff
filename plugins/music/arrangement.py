"""Who plays what in each style: default General MIDI instruments, and the percussion part.

Chorales are played in church: a church organ on the tune, a choir singing the alto and tenor
(its notes swell over a second or more in GM banks, too slow for a tune at chorale tempo, right
for inner voices) and strings on the bass line. German folksongs get an accordion over a nylon
guitar strumming each beat's chord and a plucked double bass.
Irish tunes get a fiddle (GM's Violin: the GM "Fiddle" preset is an Indian one) over a harp,
a cello on the bass, and a bodhrán pattern on the GM kit's toms, the frame drum's low open
stroke on the beats and lighter strokes between. :func:`bar_notes` turns a sampled bar into the
notes of the layers that sound.
"""

from __future__ import annotations

from collections.abc import Mapping

from .general_midi import DRUMS, resolve_program
from .harmony import Harmoniser, arrange
from .sampler import SampledBar, beat_length
from .score import Metre, Note, Piece

__all__ = ["STYLE_PARTS", "STYLE_PERCUSSION", "bar_notes", "beat_unit", "percussion_bar",
           "programs_for"]

STYLE_PARTS: dict[str, dict[str, str]] = {
    "chorale": {"melody": "Church Organ", "chords": "Choir Aahs", "bass": "String Ensemble 1"},
    "folk": {"melody": "Accordion", "chords": "Acoustic Guitar (nylon)", "bass": "Acoustic Bass"},
    "celtic": {"melody": "Violin", "chords": "Orchestral Harp", "bass": "Cello"},
}
STYLE_PERCUSSION = {"celtic"}  # styles whose band has a drum


def programs_for(style: str, overrides: Mapping[str, str | int]) -> dict[str, int]:
    """0-based GM program per part: the style's band, with any part the caller named replaced."""
    choice = {**STYLE_PARTS[style], **{part: value for part, value in overrides.items() if value != "auto"}}
    programs = {part: resolve_program(value) for part, value in choice.items()}
    if style in STYLE_PERCUSSION:
        programs["percussion"] = 0  # the standard kit
    return programs


def beat_unit(metre: Metre) -> float:
    """Quarter-note beats in one counted beat (the sampler's beat: a dotted quarter in 6/8, 9/8)."""
    return beat_length((metre.numerator, metre.denominator)) / 4.0


def percussion_bar(bar: int, metre: Metre, final: bool) -> list[Note]:
    """One bar of bodhrán: an eighth-note pulse, low strokes on the beats (loudest on the first),
    lighter ones between; the last bar a single stroke."""
    start = bar * metre.bar_beats
    if final:
        return [Note(start, 1.0, DRUMS["low floor tom"], 100, "percussion")]
    notes = []
    unit = beat_unit(metre)
    steps = round(metre.bar_beats / 0.5)
    for step in range(steps):
        offset = step * 0.5
        on_beat = abs(offset / unit - round(offset / unit)) < 1e-9
        if step == 0:
            notes.append(Note(start, 0.5, DRUMS["low floor tom"], 96, "percussion"))
        elif on_beat:
            notes.append(Note(start + offset, 0.5, DRUMS["low floor tom"], 76, "percussion"))
        else:
            notes.append(Note(start + offset, 0.5, DRUMS["low tom"], 46, "percussion"))
    return notes


def bar_notes(bar: SampledBar, piece: Piece, style: str = "folk", harmoniser: Harmoniser | None = None
              ) -> list[Note]:
    """A sampled bar as timed notes (beats), accented on the downbeat, plus the harmony (chords and
    bass, from ``harmoniser``) and drum of those layers that sound (``piece.programs``)."""
    bar_sixteenths = piece.metre.bar_beats * 4
    notes = []
    for event in bar.events:
        if event.pitch < 0:
            continue
        downbeat = event.start % bar_sixteenths == 0
        notes.append(Note(event.start / 4.0, event.length / 4.0, event.pitch, 100 if downbeat else 84))
    final = bar.bar == piece.bars - 1 and not piece.loop  # a loop's last bar leads back into its first
    if harmoniser is not None:
        soprano, voices = harmoniser.bar(bar.events, bar.bar)
        notes += arrange(voices, soprano, piece.bar_start(bar.bar), piece.metre.bar_beats, style,
                         beat_unit(piece.metre))
    if style in STYLE_PERCUSSION:
        notes += percussion_bar(bar.bar, piece.metre, final)
    return sorted((note for note in notes if note.voice in piece.programs), key=lambda n: n.start)

"""A piece as the synthesizer and the MIDI writer see it: timed notes, metre, tempo, key.

Times are in quarter-note beats from the start of the piece, so the same piece renders
at any tempo; the generator (plugins/music/melody.py) fills it bar by bar as the sampler
finishes each one.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

VOICES = ("melody", "chords", "bass", "percussion")  # also the stems, in this order


@dataclass(frozen=True)
class Note:
    start: float  # quarter-note beats from the start of the piece
    length: float  # quarter-note beats (> 0)
    pitch: int  # MIDI note number, 60 = middle C (for percussion: the GM drum key)
    velocity: int = 90  # 1..127
    voice: str = "melody"  # one of VOICES


@dataclass(frozen=True)
class Metre:
    numerator: int  # e.g. 6 in 6/8
    denominator: int  # 2, 4 or 8

    @property
    def bar_beats(self) -> float:
        """Quarter-note beats in one bar (6/8 -> 3.0)."""
        return self.numerator * 4.0 / self.denominator

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass
class Piece:
    """Notes plus what a renderer needs to place them in time and name the key."""

    metre: Metre
    bpm: float  # quarter notes per minute
    bars: int
    tonic: int  # pitch class of the key's tonic, 0 = C
    mode: str  # "major", "minor", "dorian", "mixolydian", ...
    # General MIDI program (0-based) of each voice that sounds; percussion plays the GM kit.
    programs: dict[str, int] = field(default_factory=lambda: {"melody": 19, "chords": 48, "bass": 32})
    loop: bool = False  # when True the audio is exactly `bars` long and its tail wraps into its start
    notes: list[Note] = field(default_factory=list)
    # Beat where the output begins: a one-shot starts at its tune's first note, not with the
    # leading rest of a pickup (plugins/music/pickup.py); a loop at 0.
    start: float = 0.0

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def beats(self) -> float:
        """Length of the piece in quarter-note beats (whole bars)."""
        return self.bars * self.metre.bar_beats

    def bar_start(self, bar: int) -> float:
        """Start of bar ``bar`` (0-based) in beats."""
        return bar * self.metre.bar_beats


@dataclass
class Performance:
    """What the music generator hands to an encoder (``Media.data`` for kind "audio").

    ``samples`` is the rendered stereo audio ([frames, 2] float32 in [-1, 1]); it is None
    when only MIDI was asked for, so nothing is synthesized for nobody.
    """

    piece: Piece
    samples: object | None  # numpy.ndarray [frames, 2] float32, or None
    sample_rate: int = 48000
    # The same samples already being encoded to Ogg Vorbis (audio_formats.BackgroundVorbis).
    vorbis: Future[bytes] | None = None

"""``music.melody``: melodies in the style of real corpora, as MIDI or rendered audio (no torch).

The GRU's single-step ONNX graph is looped by :mod:`sampler`; each finished bar is
turned into notes (and, optionally, the chords, bass and drum part it implies), played by
the style's band through a General MIDI SoundFont (:mod:`performer`), and for audio formats
sent ahead as PCM chunks while later bars are still being sampled. A pickup's leading rest is
cut from a one-shot and bridged in a loop (:mod:`pickup`). The gain to the loudness target
is set from the first ``LOUDNESS_LOOKAHEAD_SECONDS`` or ``LOUDNESS_LOOKAHEAD_BEATS`` of
rendered audio, whichever is longer (all of a shorter piece or a loop), so the first chunk
can leave early; streamed and unary output are the same bytes, and the loudness the whole
piece measured is reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from museforge import (
    Chunk,
    GenerationContext,
    Generator,
    LimitExceeded,
    Media,
    ModelSource,
    OutputEstimate,
    Progress,
    request_count,
)

from .arrangement import bar_notes, beat_unit, programs_for
from .audio_formats import BackgroundVorbis, pcm16_bytes
from .general_midi import resolve_program
from .harmony import HARMONY_MODEL, Harmoniser
from .limiter import apply_gain
from .loudness import LoudnessMeter, gain_for
from .performer import BLOCK_SECONDS, Performer
from .pickup import hold_over_loop_point, trim_lead
from .piece_metadata import piece_metadata, stem_metadata
from .sampler import MelodySampler, PieceRequest, beat_length
from .score import Metre, Performance, Piece
from .soundfont import SoundFont, find_soundfont
from .theory import PITCH_NAMES, pitch_class

MODEL = "music.melody"
MODELS_DIR = Path(__file__).parent / "models" / "melody"
HARMONY_MODELS_DIR = Path(__file__).parent / "models" / "harmony"
LAYERS = ("melody", "bass", "chords", "percussion")  # in the order intensity adds them
STATE_SHAPE = (2, 256)  # (layers, hidden) of the step model; must equal melody_net's
TARGET_LUFS = -16.0
# Whole-piece error over 24 pieces (3 styles x 8 seeds, 16 bars; scripts/music_harmony_checks.py
# loudness): max 0.52 LU at 8 s, 0.54 at 10 s, 1.09 at 6 s, 1.36 at 4 s. 8 s is two 4 s blocks,
# which render at once in the two render processes. At slow tempos 8 s holds too few notes (a
# bar of a 4/4 chorale at 30 bpm), so the look-ahead is also at least this many counted beats:
# fewer than 8 s hold at every style's default tempo, so there the first chunk waits no longer.
LOUDNESS_LOOKAHEAD_SECONDS = 8.0
LOUDNESS_LOOKAHEAD_BEATS = 9
MAX_BARS = 128
# Seconds of music per request, over all of count: rendering holds ~3 MB per second of audio.
MAX_SECONDS = 600
LENGTH_FIELDS = ("parameters.bars", "parameters.tempo", "parameters.time_signature", "count")
# Metres each style is trained in (those with enough pieces in its corpus); the first is
# the style's default. tests/plugins/music check these against the dataset.
STYLE_METRES: dict[str, tuple[str, ...]] = {
    "chorale": ("4/4", "3/4"),
    "folk": ("4/4", "3/4", "6/8", "2/4", "3/2", "6/4"),
    "celtic": ("6/8", "2/2", "2/4", "4/4", "3/4", "9/8"),
}
# Modes offered per style: those with at least 30 training pieces (the parse also labels
# a handful of folk tunes mixolydian, too few to promise that mode).
SERVED_MODES: dict[str, tuple[str, ...]] = {
    "chorale": ("major", "minor"),
    "folk": ("major", "minor", "dorian"),
    "celtic": ("major", "minor", "dorian", "mixolydian"),
}
STYLE_TEMPO = {"chorale": 72, "folk": 100, "celtic": 112}  # beats per minute
Style = Literal["chorale", "folk", "celtic"]
_INSTRUMENT_HELP = ("a General MIDI name ('Violin', 'Acoustic Guitar (nylon)'), a short name (harp, "
                    "strings, choir, organ, flute, guitar, ...) or a GM program number 1-128; "
                    "auto: the style's")


class MelodyParams(BaseModel):
    """Parameters of music.melody.

    At most 600 seconds of audio per request: bars x beats per bar x 60 / tempo x count
    (the time signature sets the beats per bar, the style the default tempo).
    """

    model_config = ConfigDict(extra="forbid")

    style: Style = Field("folk", description="Corpus style: chorale (Bach), folk (Essen), celtic "
                         "(O'Neill, Ryan).")
    key: str = Field("C", description=f"Tonic: one of {', '.join(PITCH_NAMES)} (or an enharmonic "
                     "spelling such as Db, A#).")
    mode: Literal["major", "minor", "dorian", "mixolydian"] = Field(
        "major", description="Mode; chorale takes major or minor, folk also dorian, celtic also "
        "dorian and mixolydian.")
    tempo: int | None = Field(None, ge=30, le=240, description="Beats per minute (the beat is the "
                              "dotted quarter in 6/8 and 9/8, the half note in 2/2 and 3/2); default by "
                              "style.")
    time_signature: str | None = Field(None, description="e.g. 4/4, 3/4, 6/8; default and choices by "
                                       "style.")
    bars: int = Field(16, ge=1, le=MAX_BARS, description=f"Length in whole bars, 1-{MAX_BARS}.")
    temperature: float = Field(0.9, gt=0.0, le=2.0, description="Sampling temperature.")
    top_k: int = Field(0, ge=0, le=100, description="Keep only the k most likely tokens (0: off).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass (1: off).")
    end_on_tonic: bool = Field(True, description="End on the tonic.")
    instrument: str | int = Field(
        "auto", description=f"Melody instrument: {_INSTRUMENT_HELP} (church organ for chorale, accordion for "
        "folk, violin for celtic).")
    chords_instrument: str | int = Field(
        "auto", description=f"Chords instrument: {_INSTRUMENT_HELP} (choir, nylon guitar, harp).")
    bass_instrument: str | int = Field(
        "auto", description=f"Bass instrument: {_INSTRUMENT_HELP} (strings, acoustic bass, cello).")
    soundfont: str = Field(
        "default", max_length=64, description="General MIDI SoundFont to play with: default (TimGM6mb, "
        "installed with museforge) or the name of an .sf2 file in the server's SoundFont folders, e.g. "
        "FluidR3_GM (Debian fluid-soundfont-gm).")
    accompaniment: bool = Field(True, description="Add the chords, bass and (celtic) bodhrán implied by "
                                "each bar; false is intensity 1.")
    intensity: int = Field(4, ge=1, le=4, description="Which layers sound, for adaptive music: 1 melody, "
                           "2 + bass, 3 + chords, 4 + percussion (celtic's bodhrán; chorale and folk have "
                           "none).")
    stems: bool = Field(False, description="Also return each sounding layer (melody, bass, chords, "
                        "percussion) as an audio file of its own, as long as the mix, the stems summing to "
                        "the mix; named <prefix>-0000-<layer>.<ext>, with provenance part=<layer>. Audio "
                        "formats only: a MIDI file already has one track per layer.")
    loop: bool = Field(False, description="Exactly `bars` long and seamless when played on repeat: the "
                       "tail of the last bar, reverb included, wraps into the first.")
    sample_rate: Literal[44100, 48000] = Field(48000, description="Audio sample rate in Hz.")

    @field_validator("key")
    @classmethod
    def _known_key(cls, value: str) -> str:
        return PITCH_NAMES[pitch_class(value)]  # raises ValueError naming the choices

    @field_validator("instrument", "chords_instrument", "bass_instrument", mode="before")
    @classmethod
    def _no_boolean(cls, value: object) -> object:
        # pydantic would read true as program 1; a long string is no instrument name either
        if isinstance(value, bool) or (isinstance(value, str) and len(value) > 64):
            raise ValueError("an instrument is a General MIDI name (at most 64 characters) or a program "
                             "number 1-128")
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"  # any case and spacing, as instrument names and `soundfont: DEFAULT` are taken
        return value

    @field_validator("instrument", "chords_instrument", "bass_instrument")
    @classmethod
    def _known_instrument(cls, value: str | int) -> str | int:
        if value != "auto":
            resolve_program(value)  # raises ValueError saying what is accepted
        return value

    @field_validator("soundfont")
    @classmethod
    def _known_soundfont(cls, value: str) -> str:
        find_soundfont(value)  # raises ValueError listing the banks there are
        return value

    def metre(self) -> tuple[int, int]:
        numerator, denominator = (self.time_signature or STYLE_METRES[self.style][0]).split("/")
        return int(numerator), int(denominator)

    def seconds(self) -> float:
        """Length of one piece: bars x beats per bar x 60 / tempo (the beat of compound metres dotted)."""
        numerator, denominator = self.metre()
        bpm = (self.tempo or STYLE_TEMPO[self.style]) * beat_length((numerator, denominator)) / 4.0
        return self.bars * (numerator * 4.0 / denominator) * 60.0 / bpm

    @model_validator(mode="after")
    def _bounded_length(self, info: ValidationInfo) -> MelodyParams:
        if self.time_signature is not None and self.time_signature not in STYLE_METRES[self.style]:
            return self  # check() names the time signature; its length means nothing
        count = request_count(info)
        seconds = self.seconds() * count
        if seconds > MAX_SECONDS:
            raise LimitExceeded(
                f"{count} x {self.bars} bars at {self.tempo or STYLE_TEMPO[self.style]} bpm = {seconds:,.0f} "
                f"seconds of music, over the {MAX_SECONDS} a request may make; fewer bars, a faster tempo or "
                f"a smaller count ({', '.join(LENGTH_FIELDS)})", LENGTH_FIELDS)
        return self


def check(params: MelodyParams, count: int) -> list[tuple[str, str]]:
    problems = []
    if params.mode not in SERVED_MODES[params.style]:
        problems.append(("parameters.mode", f"{params.style} is trained in "
                         f"{', '.join(SERVED_MODES[params.style])}, not {params.mode}"))
    if params.time_signature is not None and params.time_signature not in STYLE_METRES[params.style]:
        problems.append(("parameters.time_signature", f"{params.style} is trained in "
                         f"{', '.join(STYLE_METRES[params.style])}, not {params.time_signature!r}"))
    return problems


assert f"At most {MAX_SECONDS} seconds" in (MelodyParams.__doc__ or "")  # the schema states the bound


def estimate(params: MelodyParams, count: int) -> OutputEstimate:
    """Stereo float32 samples of every piece, and of every stem with ``stems``."""
    samples = int(params.seconds() * params.sample_rate) * count
    if not params.stems:
        return OutputEstimate(samples * 2 * 4, LENGTH_FIELDS)
    layers = len(build_piece(params).programs)  # the layers that sound: chorale and folk have no drum
    return OutputEstimate(samples * 2 * 4 * (1 + layers), ("parameters.stems", *LENGTH_FIELDS))


def build_piece(params: MelodyParams) -> Piece:
    numerator, denominator = params.metre()
    beat_quarters = beat_length((numerator, denominator)) / 4.0
    tempo = params.tempo or STYLE_TEMPO[params.style]
    programs = programs_for(params.style, {"melody": params.instrument, "chords": params.chords_instrument,
                                           "bass": params.bass_instrument})
    sounding = LAYERS[:params.intensity if params.accompaniment else 1]
    programs = {voice: program for voice, program in programs.items() if voice in sounding}
    return Piece(Metre(numerator, denominator), tempo * beat_quarters, params.bars, pitch_class(params.key),
                 params.mode, programs, params.loop)


class _Stream:
    """One piece's renderer, gain and chunking."""

    def __init__(self, index: int, piece: Piece, font: SoundFont, sample_rate: int, ogg: bool,
                 stems: bool = False) -> None:
        self.index, self.piece, self.sample_rate = index, piece, sample_rate
        self.renderer = Performer(piece, font, sample_rate, separate=stems)
        self.media_type = f"audio/pcm;rate={sample_rate};channels=2;format=s16le"
        self.pending: list[np.ndarray] = []  # raw audio held until the gain is known
        self.parts: list[np.ndarray] = []  # audio with gain applied
        # The look-ahead bars are measured before the gain (to set it); every sample is
        # measured after it (the figure reported, limiter included), bar by bar.
        self.raw_meter = LoudnessMeter(sample_rate, 2)
        self.out_meter = LoudnessMeter(sample_rate, 2, np.float32)  # reported only: the fast filter
        # An Ogg file is encoded on the side as the audio is made (as long again as making
        # it). Started last: nothing after it in here can fail and leave its thread waiting.
        self.vorbis = BackgroundVorbis(sample_rate) if ogg else None
        self.gain_db: float | None = None
        self.offset = 0
        # The gain waits for this much rendered audio (or the end): the performer hands audio out
        # in blocks, and a loop only at its end, so bars composed are not yet audio measured.
        beats = LOUDNESS_LOOKAHEAD_BEATS * beat_unit(piece.metre) * piece.seconds_per_beat
        self.lookahead_frames = round(max(LOUDNESS_LOOKAHEAD_SECONDS, beats) * sample_rate)
        self.block_frames = round(BLOCK_SECONDS * sample_rate)

    def bar_done(self, bars_done: int) -> Iterator[Chunk]:
        # Until the first chunk has left, once the look-ahead's notes and one block past them are
        # sent to render, wait for the look-ahead rather than compose on: the first chunk is when
        # playback can start. The block past it keeps the render processes busy meanwhile (waiting
        # right after the look-ahead left them idle while its gain was set and the next bars composed).
        first = (self.gain_db is None and not self.piece.loop
                 and self.renderer.sent_frames() >= self.lookahead_frames + self.block_frames)
        audio = self.renderer.take(self.piece.bar_start(bars_done), self.lookahead_frames if first else 0)
        yield from self._emit(audio, final=False)

    def finish(self) -> Iterator[Chunk]:
        for raw in self.renderer.finishing():  # block by block: the encoder starts on each at once
            yield from self._emit(raw, final=False)
        yield from self._emit(np.zeros((0, 2), np.float32), final=True)  # a piece shorter than the look-ahead

    def _emit(self, raw: np.ndarray, final: bool) -> Iterator[Chunk]:
        if self.gain_db is None:
            self.pending.append(raw)
            # Exactly the first look-ahead frames (a loop: all of it, handed out at once): how much
            # audio a take hands out depends on how fast the render processes were; the gain must not.
            measured = raw if self.piece.loop else raw[:self.lookahead_frames - self.raw_meter.frames]
            self.raw_meter.add(measured)
            if not final and self.raw_meter.frames < self.lookahead_frames:
                return
            raw = np.concatenate(self.pending)
            self.pending = []
            self.gain_db = gain_for(self.raw_meter.loudness(), TARGET_LUFS)
        ready = apply_gain(raw, self.gain_db)
        if len(ready):
            self.out_meter.add(ready)
            self.parts.append(ready)
            if self.vorbis is not None:
                self.vorbis.feed(ready)
            data = pcm16_bytes(ready)
            yield Chunk(self.index, data, self.media_type, self.offset)
            self.offset += len(data)

    def samples(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros((0, 2), np.float32)

    def stems(self, sent: np.ndarray) -> dict[str, np.ndarray]:
        """Each layer through the mix's gain stage: the gain, then per sample the limiter's squeeze of
        the mix (the limiter is memoryless), so the stems add up to ``sent``, the mix that was sent.
        One scratch array the mix's size beside the stems themselves."""
        gain = np.float32(10.0 ** ((self.gain_db or 0.0) / 20.0))
        factor = self.renderer.audio() * gain  # becomes gain x squeeze, in place
        silent = factor == 0
        np.divide(sent, factor, out=factor, where=~silent)
        factor[silent] = 1.0
        factor *= gain
        return {voice: stem * factor for voice, stem in self.renderer.stems().items()}


def generate(ctx: GenerationContext, params: MelodyParams, seed: int, count: int
             ) -> Iterator[Progress | Media | Chunk]:
    pieces = [build_piece(params) for _ in range(count)]
    font = find_soundfont(params.soundfont)
    streams: list[_Stream] = []
    try:
        if ctx.format != "mid":
            for index, piece in enumerate(pieces):
                streams.append(_Stream(index, piece, font, params.sample_rate, ctx.format == "ogg",
                                       params.stems))
        yield from _compose(ctx, params, seed, pieces, streams, font)
    except BaseException:  # cancelled (GeneratorExit) or failed: no encoder or render outlives the request
        for stream in streams:
            stream.renderer.close()
            if stream.vorbis is not None:
                stream.vorbis.abort()
        raise


def _compose(ctx: GenerationContext, params: MelodyParams, seed: int, pieces: list[Piece],
             streams: list[_Stream], font: SoundFont) -> Iterator[Progress | Media | Chunk]:
    count, audio = len(pieces), bool(streams)
    metre = (pieces[0].metre.numerator, pieces[0].metre.denominator)
    request = PieceRequest(params.style, pitch_class(params.key), params.mode, metre, params.bars,
                           params.temperature, params.top_k, params.top_p, params.end_on_tonic)
    sampler = MelodySampler(lambda feed: ctx.infer(MODEL, feed), STATE_SHAPE)
    rngs = [np.random.default_rng([seed, index]) for index in range(count)]
    harmonisers = [Harmoniser(lambda feed: ctx.infer(HARMONY_MODEL, feed), piece.tonic, piece.mode, metre,
                              piece.bars) if {"chords", "bass"} & set(piece.programs) else None
                   for piece in pieces]
    total = count * params.bars
    started = [piece.loop for piece in pieces]  # the tune has sounded (a loop starts at 0 anyway)
    yield Progress(0, total, "sampling")
    for done, bar in enumerate(sampler.sample([request] * count, rngs), 1):
        piece = pieces[bar.piece]
        notes = bar_notes(bar, piece, params.style, harmonisers[bar.piece])
        if piece.loop and bar.bar == piece.bars - 1:
            notes = hold_over_loop_point(piece, notes)
        elif not started[bar.piece]:
            notes, started[bar.piece] = trim_lead(piece, notes, False)
            if audio and started[bar.piece]:
                streams[bar.piece].renderer.start_at(piece.start)
        piece.notes.extend(notes)
        if audio and started[bar.piece]:
            stream = streams[bar.piece]
            stream.renderer.add(notes)
            if bar.bar < piece.bars - 1:
                yield from stream.bar_done(bar.bar + 1)
        yield Progress(done, total, "sampling")
        if bar.bar == piece.bars - 1:
            yield from _finish_piece(bar.piece, piece, streams[bar.piece] if audio else None, params,
                                     bar.tokens, font)


def _finish_piece(index: int, piece: Piece, stream: _Stream | None, params: MelodyParams,
                  tokens: int, font: SoundFont) -> Iterator[Chunk | Media]:
    metadata = {**piece_metadata(piece, params.style, tokens), **font.provenance()}
    samples = vorbis = None
    if stream is not None:
        yield from stream.finish()
        samples = stream.samples()
        vorbis = stream.vorbis.close() if stream.vorbis is not None else None
        metadata["loudness_lufs"] = f"{stream.out_meter.loudness():.2f}"
        metadata["seconds"] = f"{len(samples) / stream.sample_rate:.3f}"
    yield Media("audio", Performance(piece, samples, params.sample_rate, vorbis), index, metadata)
    if stream is not None and samples is not None and params.stems:
        stems = stream.stems(samples)
        for voice in LAYERS:
            if voice in piece.programs:
                yield Media("audio", Performance(piece, stems[voice], params.sample_rate), index,
                            {**metadata, **stem_metadata(piece, voice, stems[voice], params.sample_rate)},
                            part=voice)


MELODY = Generator(
    name=MODEL,
    modality="audio",
    parameters=MelodyParams,
    generate=generate,
    formats=("ogg", "wav", "flac", "mid"),
    # One ONNX Runtime thread each: a step of either model runs in a fraction of a millisecond, too
    # short to split, and a second thread took ~90 ms of CPU per 30 s piece from rendering and encoding.
    models=(ModelSource(MODEL, MODELS_DIR, intra_op_threads=1),
            ModelSource(HARMONY_MODEL, HARMONY_MODELS_DIR, intra_op_threads=1)),
    description="Melodies in the style of Bach chorales, German folksongs or Irish fiddle tunes "
    "from a style-conditioned GRU trained on music21's corpus, arranged for the style's band; MIDI or "
    "audio played through a General MIDI SoundFont, streamed as it is composed.",
    check=check,
    estimate=estimate,
    unrendered_formats=("mid",),  # notes only: no audio, so no audio to bound
)

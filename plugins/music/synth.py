"""A small numpy synthesizer: a Piece's notes to stereo float32 audio, bar by bar.

Serving path: numpy only. Three melody instruments (additive organ, Karplus–Strong
pluck, band-limited lead); chords and bass always get a soft pad and a round bass
below the melody, panned to the other side. ``Renderer`` renders incrementally so
audio can stream while later bars are still being composed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .score import INSTRUMENTS, VOICES, Note, Piece

SAMPLE_RATE = 48000
TAIL_SECONDS = 1.25  # room after the last bar of a non-looping piece for release tails
CUT_FADE_SECONDS = 0.010  # a note cut by the end of the buffer fades out over this
TABLE_SIZE = 2048  # wavetable length; linear interpolation error stays near -70 dB
FIXED_POINT = 2.0**32  # mix accumulator scale, see Renderer
CEILING = 10.0 ** (-1.0 / 20.0)  # -1 dBFS: the limiter never lets a sample past this
KNEE = 10.0 ** (-6.0 / 20.0)  # below -6 dBFS the limiter is exactly linear
UNROLL = 8  # string periods computed per convolution in karplus_strong


@dataclass(frozen=True)
class Timbre:
    """An additive voice: harmonic partials, an ADSR envelope, level, pan and vibrato."""

    partials: tuple[tuple[int, float], ...]  # (harmonic number, amplitude)
    attack: float  # seconds; raised-cosine ramp from silence, so no click
    decay: float  # seconds (time constant) from full level towards sustain
    sustain: float  # level held until the note is released
    release: float  # seconds; raised-cosine ramp to silence after the note ends
    level: float  # peak amplitude at velocity 127
    pan: float  # -1 left .. +1 right
    chorus_cents: float = 0.0  # a second oscillator this far sharp and one as far flat
    vibrato_cents: float = 0.0
    vibrato_hz: float = 5.5
    vibrato_delay: float = 0.2  # seconds before vibrato fades in (over the same time again)


# Drawbar-like organ: 8', 4', 2 2/3', 2', 1 1/3', 1' with no decay, like a held key.
ORGAN = Timbre(((1, 1.0), (2, 0.5), (3, 0.32), (4, 0.22), (6, 0.1), (8, 0.07)),
               attack=0.012, decay=1.0, sustain=1.0, release=0.05, level=0.42, pan=-0.3)
# Between saw and square (even harmonics at half strength): a hollow, reedy lead.
LEAD = Timbre(tuple((k, (1.0 if k % 2 else 0.5) / k) for k in range(1, 13)),
              attack=0.01, decay=0.2, sustain=0.7, release=0.08, level=0.38, pan=-0.3,
              vibrato_cents=14.0)
# Karplus–Strong supplies its own decay and timbre; this is only the gate around it.
PLUCK = Timbre(((1, 1.0),), attack=0.003, decay=1.0, sustain=1.0, release=0.06, level=0.5, pan=-0.3)
PAD = Timbre(((1, 1.0), (2, 0.35), (3, 0.15), (4, 0.08), (5, 0.04)),
             attack=0.08, decay=0.6, sustain=0.8, release=0.3, level=0.13, pan=0.35, chorus_cents=6.0)
BASS = Timbre(((1, 1.0), (2, 0.45), (3, 0.2), (4, 0.08)),
              attack=0.006, decay=0.35, sustain=0.6, release=0.07, level=0.3, pan=0.15)
MELODY_TIMBRES = {"organ": ORGAN, "pluck": PLUCK, "lead": LEAD}


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def velocity_gain(velocity: int) -> float:
    """The DLS/GM convention (40·log10(v/127) dB): about 40 dB from softest to loudest."""
    return (min(max(velocity, 1), 127) / 127.0) ** 2


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power pan: left² + right² = 1 wherever the voice sits."""
    angle = (min(max(pan, -1.0), 1.0) + 1.0) * math.pi / 4.0
    return math.cos(angle), math.sin(angle)


@lru_cache(maxsize=512)
def wavetable(partials: tuple[tuple[int, float], ...], max_harmonic: float) -> tuple[np.ndarray, np.ndarray]:
    """One period (plus a guard sample) and its slopes, partials above Nyquist left out."""
    phase = np.arange(TABLE_SIZE + 1) * (2.0 * np.pi / TABLE_SIZE)
    table = np.zeros(TABLE_SIZE + 1)
    for harmonic, amplitude in partials:
        if harmonic <= max_harmonic or harmonic == 1:
            table += amplitude * np.sin(harmonic * phase)
    table /= np.max(np.abs(table))
    return table[:-1].copy(), np.diff(table)


def oscillate(table: tuple[np.ndarray, np.ndarray], cycles: np.ndarray) -> np.ndarray:
    """Wavetable lookup with linear interpolation; ``cycles`` is the phase in periods (>= 0)."""
    values, slopes = table
    position = cycles * TABLE_SIZE
    index = position.astype(np.int64)
    fraction = position - index
    index &= TABLE_SIZE - 1
    return values[index] + slopes[index] * fraction


@lru_cache(maxsize=256)
def envelope(timbre: Timbre, gate: int, frames: int, sample_rate: int) -> np.ndarray:
    """ADSR over ``frames`` samples with the key released at ``gate``; zero at both ends.

    Cached (read-only): a piece repeats a handful of note lengths per voice.
    """
    n = np.arange(frames, dtype=np.float64)
    attack = max(1, round(timbre.attack * sample_rate))
    env = np.ones(frames)
    if timbre.sustain < 1.0:
        decay = np.exp(-np.maximum(n - attack, 0.0) / (timbre.decay * sample_rate))
        env = timbre.sustain + (1.0 - timbre.sustain) * decay
    head = min(attack, frames)
    env[:head] *= 0.5 - 0.5 * np.cos(np.pi * n[:head] / attack)
    release = max(1, round(timbre.release * sample_rate))
    if gate < frames:
        tail = np.minimum((n[gate:] - gate + 1) / release, 1.0)
        env[gate:] *= 0.5 + 0.5 * np.cos(np.pi * tail)
    env.flags.writeable = False
    return env


def lagrange3(delay: float) -> np.ndarray:
    """Third-order Lagrange fractional-delay FIR; passive (|H| <= 1) for delay in [1, 2]."""
    taps = np.ones(4)
    for k in range(4):
        for m in range(4):
            if m != k:
                taps[k] *= (delay - m) / (k - m)
    return taps


def karplus_strong(frequency: float, frames: int, velocity: int, seed: int, sample_rate: int) -> np.ndarray:
    """A plucked string: a noise burst circulating in a damped, fractionally tuned delay loop.

    The loop filter's taps all lie at least one period back, so a period of output is
    one small convolution of the period before it. Substituting the recurrence into
    itself ``UNROLL`` times gives taps at least that many periods back, so after the
    first few periods each convolution yields ``UNROLL`` periods at once: a Python loop
    over groups of periods (dozens per second), never over samples.
    """
    period = sample_rate / frequency
    # Loop delay = lag + 0.5 (two-point average) + Lagrange delay in [1, 2): exact tuning.
    lag = max(1, math.floor(period - 1.5))
    fractional = period - 0.5 - lag
    t60 = min(4.0, max(0.8, 3.0 * math.sqrt(220.0 / frequency)))  # low strings ring longer
    loss = 10.0 ** (-3.0 * period / (t60 * sample_rate))
    loop = np.convolve([0.5, 0.5], lagrange3(fractional)) * loss  # taps at lag .. lag + 4

    rng = np.random.default_rng(seed)
    burst = rng.uniform(-1.0, 1.0, lag)
    for _ in range(1 + (127 - velocity) // 32):  # softer plucks are darker
        burst = 0.25 * np.roll(burst, 1) + 0.5 * burst + 0.25 * np.roll(burst, -1)
    burst -= burst.mean()  # no DC to ring on
    burst *= 0.5 / max(float(np.sqrt(np.mean(burst**2))), 1e-9)

    pad = 4 * UNROLL  # leading zeros stand for silence before the pluck (the widest taps' reach)
    out = np.zeros(frames + pad)
    head = min(lag, frames)
    out[pad:pad + head] = burst[:head]
    end = frames + pad
    start = pad + lag
    # The first UNROLL periods after the burst, one at a time: the unrolled recurrence
    # only holds where every sample it reaches back to obeys the recurrence itself.
    for _ in range(UNROLL):
        if start >= end:
            return out[pad:]
        stop = min(start + lag, end)
        out[start:stop] = np.convolve(out[start - lag - 4:stop - lag], loop, "valid")
        start = stop
    taps = loop
    for _ in range(UNROLL - 1):
        taps = np.convolve(taps, loop)  # taps at UNROLL * lag .. UNROLL * (lag + 4)
    reach, width = UNROLL * lag, len(taps) - 1
    while start < end:
        stop = min(start + reach, end)
        out[start:stop] = np.convolve(out[start - reach - width:stop - reach], taps, "valid")
        start = stop
    return out[pad:]


class Renderer:
    """Renders notes into a stereo buffer as they arrive and hands out finished audio.

    Notes arrive in start order, bar by bar; ``take(beat)`` returns the audio up to
    ``beat``, which is final once every note starting before ``beat`` has been added.
    The mix is accumulated in 64-bit fixed point, so the result does not depend on the
    order notes were added in: streamed chunks equal a one-shot render bit for bit.
    """

    def __init__(self, piece: Piece, sample_rate: int = SAMPLE_RATE) -> None:
        if piece.instrument not in INSTRUMENTS:
            raise ValueError(f"instrument must be one of {INSTRUMENTS}, got {piece.instrument!r}")
        if sample_rate < 8000:
            raise ValueError(f"sample_rate must be at least 8000, got {sample_rate}")
        self.piece = piece
        self.sample_rate = sample_rate
        self.length = self.frame(piece.beats)  # the piece itself, in frames
        tail = 0 if piece.loop else round(TAIL_SECONDS * sample_rate)
        self.frames = self.length + tail  # everything finish() will have handed out
        self._mix = np.zeros((self.frames, 2), np.int64)
        self._taken = 0

    def frame(self, beat: float) -> int:
        """The sample index of a time in beats."""
        return round(beat * 60.0 / self.piece.bpm * self.sample_rate)

    def add(self, notes: Iterable[Note]) -> None:
        for note in notes:
            self._add(note)

    def take(self, until_beat: float) -> np.ndarray:
        """The audio from where the last take stopped up to ``until_beat``: [frames, 2] float32."""
        return self._hand_out(self.frame(until_beat))

    def finish(self) -> np.ndarray:
        """The rest of the audio, including release tails (none past the end of a loop)."""
        return self._hand_out(self.frames)

    def _hand_out(self, stop: int) -> np.ndarray:
        stop = min(max(stop, self._taken), self.frames)
        chunk = (self._mix[self._taken:stop] * (1.0 / FIXED_POINT)).astype(np.float32)
        self._taken = stop
        return chunk

    def _add(self, note: Note) -> None:
        if note.voice not in VOICES:
            raise ValueError(f"note voice must be one of {VOICES}, got {note.voice!r}")
        if note.length <= 0 or note.start < 0:
            raise ValueError(f"note needs start >= 0 and length > 0, got {note}")
        start = self.frame(note.start)
        if start >= self.length:
            raise ValueError(f"note at beat {note.start} starts after the piece ends ({self.piece.beats})")
        if start < self._taken:
            raise ValueError(f"note at beat {note.start} starts before audio already taken")
        gate = max(1, self.frame(note.start + note.length) - start)
        timbre = self._timbre(note)
        wanted = gate + max(1, round(timbre.release * self.sample_rate))
        frames = min(wanted, self.frames - start)  # a loop's notes end inside the loop
        mono = self._voice(note, timbre, gate, frames, start)
        if frames < wanted:  # released early: a short fade instead of a cut
            fade = min(frames, round(CUT_FADE_SECONDS * self.sample_rate))
            mono[frames - fade:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, fade + 1) / fade)
        mono *= timbre.level * velocity_gain(note.velocity) * FIXED_POINT
        left, right = pan_gains(timbre.pan)
        self._mix[start:start + frames, 0] += np.rint(mono * left).astype(np.int64)
        self._mix[start:start + frames, 1] += np.rint(mono * right).astype(np.int64)

    def _timbre(self, note: Note) -> Timbre:
        if note.voice == "chords":
            return PAD
        if note.voice == "bass":
            return BASS
        return MELODY_TIMBRES[self.piece.instrument]

    def _voice(self, note: Note, timbre: Timbre, gate: int, frames: int, start: int) -> np.ndarray:
        rate = self.sample_rate
        frequency = midi_to_hz(note.pitch)
        env = envelope(timbre, gate, frames, rate)
        if timbre is PLUCK:
            seed = note.pitch * 1_000_003 + start  # the same note always plucks the same noise
            return karplus_strong(frequency, frames, note.velocity, seed, rate) * env
        top = 2.0 ** ((timbre.vibrato_cents + timbre.chorus_cents) / 1200.0)
        table = wavetable(timbre.partials, math.floor(0.45 * rate / (frequency * top)))
        n = np.arange(frames, dtype=np.float64)
        if timbre.vibrato_cents:
            # Depth fades in after a delay, as a player's does; the phase is the running sum.
            delay = timbre.vibrato_delay * rate
            depth = np.clip((n - delay) / delay, 0.0, 1.0) * (2.0 ** (timbre.vibrato_cents / 1200.0) - 1.0)
            ratio = 1.0 + depth * np.sin(2.0 * np.pi * timbre.vibrato_hz / rate * n)
            cycles = np.cumsum(ratio) * (frequency / rate)
        else:
            cycles = n * (frequency / rate)
        if timbre.chorus_cents:
            spread = 2.0 ** (timbre.chorus_cents / 1200.0)
            wave = 0.5 * (oscillate(table, cycles * spread) + oscillate(table, cycles / spread))
        else:
            wave = oscillate(table, cycles)
        return wave * env


def render(piece: Piece, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole piece in one go: [frames, 2] float32, before gain."""
    renderer = Renderer(piece, sample_rate)
    renderer.add(sorted(piece.notes, key=lambda note: note.start))
    return renderer.finish()


def soft_limit(samples: np.ndarray) -> np.ndarray:
    """Memoryless soft knee: linear below -6 dBFS, tanh-squeezed towards -1 dBFS above.

    Being memoryless, it gives the same samples whether applied to the whole piece or
    to streamed chunks. It only touches peaks: at a -16 LUFS target a synth mix rarely
    crosses the knee, and when it does the integrated loudness drops by a few tenths
    of an LU at most (measure after limiting when the exact figure matters).
    """
    x = np.asarray(samples, dtype=np.float32)
    magnitude = np.abs(x)
    over = magnitude > KNEE
    if not over.any():
        return x
    room = CEILING - KNEE
    squeezed = KNEE + room * np.tanh((magnitude[over] - KNEE) / room)
    out = x.copy()
    out[over] = np.copysign(np.minimum(squeezed, np.float32(CEILING)), x[over]).astype(np.float32)
    return out


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """The caller's gain stage: scale by ``gain_db`` then soft-limit so peaks stay <= -1 dBFS."""
    return soft_limit(np.asarray(samples, dtype=np.float32) * np.float32(10.0 ** (gain_db / 20.0)))

"""Where the beats of a soundtrack fall: read from a museforge piece's own tempo, or tracked.

A piece made by ``music.melody`` carries its provenance in the file (the WAV comment, the
Vorbis comment of FLAC and Ogg), tempo and time signature included, and starts on a beat:
its beats are exact. Any other sound is tracked (numpy only): an onset strength envelope
(spectral flux of a log-magnitude spectrogram), the tempo where that envelope's
autocorrelation peaks (weighted towards moderate tempi, so a tracker does not lock onto
half or double time without reason), then the beat times by dynamic programming, each beat
placed where onsets are strong and about one period after the last (after Ellis, "Beat
tracking by dynamic programming", 2007).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

RATE = 22050  # samples per second the tracker reads
HOP = 256  # samples between onset envelope values (11.6 ms)
FFT = 1024
SLOWEST, FASTEST = 60.0, 200.0  # beats per minute the tracker considers
PREFERRED = 110.0  # the tempo prior's centre
PRIOR_OCTAVES = 0.9  # its width (standard deviation, in octaves)
TIGHTNESS = 100.0  # how strongly a beat keeps to one period after the last
WEAKEST = 0.3  # an end beat whose onset is under this share of the median beat's is dropped


@dataclass(frozen=True)
class Beats:
    times: tuple[float, ...]  # seconds
    tempo: float  # beats per minute
    source: str  # "piece" (the file's own tempo) or "tracked"

    @property
    def period(self) -> float:
        return 60.0 / self.tempo


def beats_of(samples: np.ndarray, tags: Mapping[str, str]) -> Beats:
    """The beats of mono ``samples`` at RATE: the piece's own when its tags carry a museforge tempo."""
    seconds = len(samples) / RATE
    told = piece_beat_seconds(tags)
    if told is not None:
        count = int(seconds / told + 1e-9) + 1
        return Beats(tuple(k * told for k in range(count) if k * told < seconds), 60.0 / told, "piece")
    return track(samples)


def piece_beat_seconds(tags: Mapping[str, str]) -> float | None:
    """Seconds per beat from a museforge piece's provenance (``tempo_qpm`` and ``time_signature``);
    None when the file carries none. The beat of 6/8, 9/8 and 12/8 is the dotted quarter."""
    for text in tags.values():
        if "tempo_qpm" not in text:
            continue
        try:
            record = json.loads(text)
            # A plugin's own provenance keys are stored with the "x." prefix.
            quarters_per_minute = float(record.get("x.tempo_qpm", record.get("tempo_qpm")))
        except (ValueError, TypeError, AttributeError):
            continue
        signature = record.get("x.time_signature", record.get("time_signature", "4/4"))
        numerator, _, denominator = str(signature).partition("/")
        compound = denominator == "8" and numerator in ("6", "9", "12")
        quarters = 1.5 if compound else 4.0 / float(denominator or 4)
        if quarters_per_minute > 0:
            return 60.0 / quarters_per_minute * quarters
    return None


def onset_envelope(samples: np.ndarray) -> np.ndarray:
    """Onset strength every HOP samples (frame t centred on sample t * HOP), mean 0, unit deviation."""
    padded = np.concatenate([np.zeros(FFT // 2, np.float32), samples.astype(np.float32),
                             np.zeros(FFT, np.float32)])
    count = max(1, (len(padded) - FFT) // HOP + 1)
    index = np.arange(FFT)[None, :] + HOP * np.arange(count)[:, None]
    spectrum = np.abs(np.fft.rfft(padded[index] * np.hanning(FFT).astype(np.float32), axis=1))
    spectrum = np.log1p(1000.0 * spectrum[:, : FFT // 4])  # up to 5.5 kHz: where notes start
    flux = np.maximum(0.0, np.diff(spectrum, axis=0, prepend=spectrum[:1])).sum(axis=1)
    width = max(1, int(0.4 * RATE / HOP))  # a local mean removes slow swells of loudness
    local = np.convolve(flux, np.ones(width) / width, mode="same")
    envelope = np.maximum(0.0, flux - local)
    deviation = envelope.std()
    return envelope / deviation if deviation > 0 else envelope


def tempo_period(envelope: np.ndarray) -> float:
    """The beat period in envelope frames: the autocorrelation's best lag under the tempo prior."""
    frames_per_minute = 60.0 * RATE / HOP
    shortest, longest = int(frames_per_minute / FASTEST), int(frames_per_minute / SLOWEST) + 1
    centred = envelope - envelope.mean()
    size = 1 << int(np.ceil(np.log2(2 * len(centred) + 1)))
    spectrum = np.fft.rfft(centred, size)
    correlation = np.fft.irfft(spectrum * np.conj(spectrum), size)[: longest + 2]
    lags = np.arange(shortest, longest + 1)
    prior = np.exp(-0.5 * (np.log2(frames_per_minute / lags / PREFERRED) / PRIOR_OCTAVES) ** 2)
    best = int(lags[np.argmax(correlation[lags] * prior)])
    before, at, after = correlation[best - 1], correlation[best], correlation[best + 1]
    curve = before - 2 * at + after
    return best + (0.5 * (before - after) / curve if curve < 0 else 0.0)  # between lags, by a parabola


def track(samples: np.ndarray) -> Beats:
    """Beats tracked in mono ``samples`` at RATE."""
    envelope = onset_envelope(samples)
    if len(envelope) < 4 or not envelope.any():
        return Beats((), PREFERRED, "tracked")
    period = tempo_period(envelope)
    smoothed = np.convolve(envelope, np.exp(-0.5 * (np.arange(-period, period + 1) / (period / 32)) ** 2),
                           mode="same")
    count = len(smoothed)
    score = smoothed.copy()
    back = np.full(count, -1)
    offsets = np.arange(-round(2 * period), -round(period / 2) + 1)
    penalty = -TIGHTNESS * np.log(-offsets / period) ** 2
    for t in range(count):
        previous = t + offsets
        valid = previous >= 0
        if not valid.any():
            continue
        candidates = score[previous[valid]] + penalty[valid]
        best = int(np.argmax(candidates))
        if candidates[best] > 0:
            score[t] += candidates[best]
            back[t] = previous[valid][best]
    tail = np.arange(max(0, count - round(period)), count)
    last = int(tail[np.argmax(score[tail])])
    chain = [last]
    while back[chain[-1]] >= 0:
        chain.append(int(back[chain[-1]]))
    chain.reverse()
    # The search runs on a period past the last onset (and may start before the first): beats
    # with next to no onset at either end are dropped.
    strength = smoothed[chain]
    strong = np.flatnonzero(strength >= WEAKEST * np.median(strength))
    chain = chain[strong[0]:strong[-1] + 1] if len(strong) else chain
    times = tuple(float(f * HOP / RATE) for f in chain)
    return Beats(times, 60.0 * RATE / HOP / period, "tracked")

"""ITU-R BS.1770-4 integrated loudness (LUFS), for loudness-normalised output.

The K-weighting biquads run as recursive filters (scipy) with their state kept between
calls, so the served melody measures its audio bar by bar as it streams, each sample
filtered once.
"""

from __future__ import annotations

import math

import numpy as np

from museforge import defer_import

defer_import("scipy.signal")  # imported where used, after start-up (see defer_import)

BLOCK_SECONDS = 0.4
STEP_SECONDS = 0.1  # 75 % overlap
ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = -10.0  # LU below the absolutely gated loudness
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs
FILTER_FRAMES = 48000  # filtered a second at a time: the float64 work stays in cache


def k_weighting(sample_rate: float) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(b, a) of the head shelf and the RLB high-pass at ``sample_rate``.

    Bilinear transforms of the analogue prototypes behind BS.1770's 48 kHz tables (the
    libebur128 derivation), so any rate gets the filter the standard means.
    """
    k = math.tan(math.pi * 1681.974450955533 / sample_rate)
    q = 0.7071752369554196
    vh = 10.0 ** (3.999843853973347 / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf_b = np.array([vh + vb * k / q + k * k, 2.0 * (k * k - vh), vh - vb * k / q + k * k]) / a0
    shelf_a = np.array([a0, 2.0 * (k * k - 1.0), 1.0 - k / q + k * k]) / a0
    k = math.tan(math.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1.0 + k / q + k * k
    pass_b = np.array([1.0, -2.0, 1.0])
    pass_a = np.array([a0, 2.0 * (k * k - 1.0), 1.0 - k / q + k * k]) / a0
    return (shelf_b, shelf_a), (pass_b, pass_a)


class LoudnessMeter:
    """A streaming integrated-loudness meter: feed audio in pieces, read the figure at any time.

    The K-weighting runs as two biquads (scipy's ``sosfilt``) whose state carries from one
    piece to the next, so a piece fed in chunks measures exactly as the whole signal
    would, and each sample is filtered once. ``dtype`` float32 filters about four times as
    fast, within about 0.01 LU of float64: for a figure that is only reported, not one a
    gain is set from. Channel-weighted energy is summed per
    100 ms step; a 400 ms gating block is four consecutive steps (75 % overlap).
    """

    def __init__(self, sample_rate: int, channels: int, dtype: type[np.floating] = np.float64) -> None:
        if not 1 <= channels <= len(CHANNEL_WEIGHTS):
            raise ValueError(f"channels must be 1-{len(CHANNEL_WEIGHTS)}, got {channels}")
        self.sample_rate, self.channels = sample_rate, channels
        self.dtype = dtype
        self.sos = np.array([np.concatenate([b, a]) for b, a in k_weighting(sample_rate)], dtype)
        self.state = np.zeros((len(self.sos), 2, channels), dtype)
        self.weights = np.asarray(CHANNEL_WEIGHTS[:channels], dtype)
        self.step = round(STEP_SECONDS * sample_rate)
        self.steps_per_block = round(BLOCK_SECONDS / STEP_SECONDS)
        self.step_energy: list[np.ndarray] = []  # energy of each whole 100 ms step
        self.partial = np.zeros(0, dtype)  # per-sample energy of the step being filled
        self.frames = 0

    def add(self, samples: np.ndarray) -> None:
        from scipy import signal
        x = np.asarray(samples, dtype=self.dtype)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"samples must be [frames, {self.channels}], got shape {x.shape}")
        if not len(x):
            return  # scipy's filter refuses an empty block; there is nothing to measure
        parts = [self.partial]
        for start in range(0, len(x), FILTER_FRAMES):
            filtered, self.state = signal.sosfilt(self.sos, x[start:start + FILTER_FRAMES], axis=0,
                                                  zi=self.state)
            squared = filtered * filtered
            # Channel by channel, not ``squared @ weights``: numpy hands a long matrix-vector product
            # to OpenBLAS's thread pool, whose workers then spin for a while after each call, taking
            # a core from the SoundFont renderers and the Vorbis encoder (~170 ms of CPU per 30 s piece).
            weighted = squared[:, 0] * self.weights[0]
            for channel in range(1, self.channels):
                weighted += squared[:, channel] * self.weights[channel]
            parts.append(weighted)
        energy = np.concatenate(parts)
        whole = len(energy) // self.step * self.step
        if whole:
            self.step_energy.append(energy[:whole].reshape(-1, self.step).sum(axis=1, dtype=np.float64))
        self.partial = energy[whole:]
        self.frames += len(x)

    def block_powers(self) -> np.ndarray:
        """Channel-weighted mean square of every whole 400 ms gating block so far."""
        steps = np.concatenate(self.step_energy) if self.step_energy else np.zeros(0)
        count = self.steps_per_block
        if len(steps) < count:  # shorter than one block: the whole signal is the only block
            return np.array([(steps.sum() + self.partial.sum()) / max(self.frames, 1)])
        running = np.concatenate([[0.0], np.cumsum(steps)])
        return (running[count:] - running[:-count]) / (count * self.step)

    def loudness(self) -> float:
        """Gated integrated loudness in LUFS of everything fed so far; -inf for silence."""
        powers = self.block_powers()
        with np.errstate(divide="ignore"):
            loudness = -0.691 + 10.0 * np.log10(powers)
        gated = powers[loudness > ABSOLUTE_GATE]
        if gated.size == 0:
            return -math.inf
        relative = -0.691 + 10.0 * math.log10(float(gated.mean())) + RELATIVE_GATE
        kept = powers[(loudness > ABSOLUTE_GATE) & (loudness > relative)]
        return -0.691 + 10.0 * math.log10(float(kept.mean()))


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Gated integrated loudness in LUFS of a whole signal ([frames] or [frames, channels]);
    -inf for silence."""
    x = np.asarray(samples)
    if x.ndim not in (1, 2) or (x.ndim == 2 and not 1 <= x.shape[1] <= len(CHANNEL_WEIGHTS)):
        raise ValueError(f"samples must be [frames] or [frames, channels<={len(CHANNEL_WEIGHTS)}], "
                         f"got shape {x.shape}")
    meter = LoudnessMeter(sample_rate, 1 if x.ndim == 1 else x.shape[1])
    meter.add(x)
    return meter.loudness()


def gain_to_target(samples: np.ndarray, sample_rate: int, target_lufs: float) -> float:
    """The gain in dB that brings ``samples`` to ``target_lufs`` (0 for silence)."""
    return gain_for(integrated_loudness(samples, sample_rate), target_lufs)


def gain_for(loudness: float, target_lufs: float) -> float:
    """The gain in dB from a measured ``loudness`` to ``target_lufs`` (0 for silence)."""
    return 0.0 if math.isinf(loudness) else target_lufs - loudness

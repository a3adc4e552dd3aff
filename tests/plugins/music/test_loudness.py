"""BS.1770-4 integrated loudness against the standard's own numbers and against pyloudnorm."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pyloudnorm
import pytest

from museforge.plugins.music import loudness
from museforge.plugins.music.limiter import CEILING, apply_gain
from museforge.plugins.music.performer import perform
from museforge.plugins.music.soundfont import default_soundfont
from tests.plugins.music.pieces import song

RATE = 48000


def sine(frequency: float, amplitude: float, seconds: float, rate: int = RATE) -> np.ndarray:
    return amplitude * np.sin(2.0 * np.pi * frequency * np.arange(round(seconds * rate)) / rate)


def test_k_weighting_at_48k_is_the_standards_table() -> None:
    (shelf_b, shelf_a), (pass_b, pass_a) = loudness.k_weighting(48000)
    assert np.allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-10)
    assert np.allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-10)
    assert np.allclose(pass_b, [1.0, -2.0, 1.0]) and np.allclose(pass_a, [1.0, -1.99004745483398,
                                                                            0.99007225036621], atol=1e-10)


def test_full_scale_1k_sine_in_one_channel_reads_minus_3_lufs() -> None:
    # BS.1770-4: a 0 dBFS 997 Hz sine in one front channel reads -3.01 LKFS.
    assert loudness.integrated_loudness(sine(997.0, 1.0, 5.0), RATE) == pytest.approx(-3.01, abs=0.02)


def rendered(melody_program: int) -> np.ndarray:
    return perform(song(melody_program, bars=8), default_soundfont()).audio().astype(np.float64)


SIGNALS: dict[str, Callable[[], np.ndarray]] = {
    "white noise": lambda: np.random.default_rng(0).standard_normal((RATE * 5, 2)) * 0.1,
    "sine 1 kHz": lambda: np.tile(sine(1000.0, 0.5, 3.0)[:, None], (1, 2)),
    "sine 60 Hz mono": lambda: sine(60.0, 0.5, 3.0),
    "sine 5 kHz, silence": lambda: np.concatenate([sine(5000.0, 0.3, 3.0), np.zeros(RATE * 3)]),
    **{f"rendered {name}": partial(rendered, program) for name, program in (("organ", 19), ("harp", 46),
                                                                              ("violin", 40))},
}


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_agrees_with_pyloudnorm(name: str) -> None:
    samples = SIGNALS[name]()
    ours = loudness.integrated_loudness(samples, RATE)
    assert abs(ours - pyloudnorm.Meter(RATE).integrated_loudness(samples)) < 0.3
    # pyloudnorm's default filter approximates K-weighting; its "DeMan" filter is the exact one.
    assert abs(ours - pyloudnorm.Meter(RATE, "DeMan").integrated_loudness(samples)) < 0.01


def test_agrees_with_pyloudnorm_at_44k1() -> None:
    noise = np.random.default_rng(1).standard_normal((44100 * 4, 2)) * 0.05
    ours = loudness.integrated_loudness(noise, 44100)
    assert abs(ours - pyloudnorm.Meter(44100, "DeMan").integrated_loudness(noise)) < 0.01


def test_gates_leave_out_silence_and_quiet_passages() -> None:
    # 20 s each, so the three blocks straddling the change (partly loud, and kept) weigh little.
    loud = np.tile(sine(1000.0, 0.5, 20.0)[:, None], (1, 2))
    alone = loudness.integrated_loudness(loud, RATE)
    silence = np.zeros((RATE * 20, 2))
    whisper = loud * 10 ** (-30 / 20)  # 30 LU down: below the relative gate
    for quieter in (silence, whisper):
        joined = np.concatenate([loud, quieter])
        assert loudness.integrated_loudness(joined, RATE) == pytest.approx(alone, abs=0.05)
    # Without the relative gate the whisper would pull the mean power down by about 3 dB.
    assert loudness.integrated_loudness(silence, RATE) == -np.inf


def test_gain_to_target_reaches_the_target() -> None:
    audio = rendered(19)
    gain = loudness.gain_to_target(audio, RATE, -16.0)
    assert loudness.integrated_loudness(audio * 10 ** (gain / 20), RATE) == pytest.approx(-16.0, abs=1e-6)
    assert loudness.gain_to_target(np.zeros((RATE, 2)), RATE, -16.0) == 0.0


def test_limiter_costs_little_loudness_at_minus_14() -> None:
    audio = rendered(81)
    limited = apply_gain(audio, loudness.gain_to_target(audio, RATE, -14.0))
    assert np.abs(limited).max() <= CEILING
    assert loudness.integrated_loudness(limited, RATE) == pytest.approx(-14.0, abs=0.5)


def test_bad_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="samples"):
        loudness.integrated_loudness(np.zeros((10, 10, 2)), RATE)


def test_a_meter_fed_in_pieces_reads_what_the_whole_signal_reads() -> None:
    audio = rendered(46)
    meter = loudness.LoudnessMeter(RATE, 2)
    # Across step boundaries, and an empty piece (the performer hands those out between blocks).
    for piece in np.array_split(audio, [1, 4799, 4800, 4800, 30000, 100001]):
        meter.add(piece)
    assert meter.frames == len(audio)
    assert meter.loudness() == pytest.approx(loudness.integrated_loudness(audio, RATE), abs=1e-9)
    short = loudness.LoudnessMeter(RATE, 2)  # under one 400 ms block: the whole signal is the block
    short.add(audio[:RATE // 10])
    assert np.isfinite(short.loudness())
    with pytest.raises(ValueError, match="samples must be"):
        meter.add(audio[:, :1])


def test_the_float32_meter_reads_what_the_float64_meter_reads() -> None:
    # The served melody reports its output's loudness through the float32 filter (four times as
    # fast); the figure is written to two decimals, so it must agree far closer than that.
    audio = rendered(46)
    t = np.arange(8 * RATE) / RATE
    bass = np.stack([0.5 * np.sin(2 * np.pi * 41.2 * t), 0.3 * np.sin(2 * np.pi * 41.2 * t + 1)], 1)
    for signal in (audio, bass.astype(np.float32), audio * np.float32(0.001)):
        wide, fast = loudness.LoudnessMeter(RATE, 2), loudness.LoudnessMeter(RATE, 2, np.float32)
        for piece in np.array_split(signal, 7):
            wide.add(piece)
            fast.add(piece)
        assert fast.loudness() == pytest.approx(wide.loudness(), abs=1e-3)
        assert fast.state.dtype == np.float32

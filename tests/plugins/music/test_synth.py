"""The synthesizer: tuning, click-free edges, loops that wrap cleanly, streaming, gain."""

from __future__ import annotations

import numpy as np
import pytest

from museforge.plugins.music import synth
from museforge.plugins.music.score import INSTRUMENTS, Metre, Note, Piece
from tests.plugins.music.pieces import by_bar, song

RATE = 48000


def single(instrument: str, pitch: int, beats: float = 4.0, voice: str = "melody", velocity: int = 100,
           loop: bool = False) -> Piece:
    """One note from beat 0 at 120 bpm (a beat is half a second) in a piece two bars long."""
    note = Note(0.0, beats, pitch, velocity, voice)
    return Piece(Metre(4, 4), 120.0, 2, 0, "major", instrument, loop, [note])


def cents_off(signal: np.ndarray, frequency: float) -> float:
    """How far the strongest spectral peak within a semitone of ``frequency`` lies from it, in cents."""
    x = signal[RATE // 20:].astype(np.float64)  # skip the attack
    size = 8 * len(x)  # zero padding plus parabolic interpolation: sub-cent resolution
    magnitude = np.abs(np.fft.rfft(x * np.hanning(len(x)), size))
    freqs = np.fft.rfftfreq(size, 1.0 / RATE)
    band = np.flatnonzero((freqs > frequency * 2 ** (-1 / 12)) & (freqs < frequency * 2 ** (1 / 12)))
    peak = band[np.argmax(magnitude[band])]
    a, b, c = np.log(magnitude[peak - 1:peak + 2])
    found = (peak + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / size
    return float(1200.0 * np.log2(found / frequency))


@pytest.mark.parametrize("instrument", INSTRUMENTS)
@pytest.mark.parametrize("pitch", [69, 40])  # A4 and E2
def test_each_instrument_is_in_tune(instrument: str, pitch: int) -> None:
    audio = synth.render(single(instrument, pitch))
    assert abs(cents_off(audio[:, 0], synth.midi_to_hz(pitch))) < 5.0


def test_pluck_tuning_holds_where_the_delay_is_short() -> None:
    # At C7 the loop is only ~22 samples: without the fractional delay it would be tens of cents off.
    audio = synth.render(single("pluck", 96))
    assert abs(cents_off(audio[:, 0], synth.midi_to_hz(96))) < 5.0


def test_bass_is_in_tune() -> None:
    audio = synth.render(single("organ", 33, voice="bass"))
    assert abs(cents_off(audio[:, 1], synth.midi_to_hz(33))) < 5.0


def test_pad_chorus_is_centred_on_the_note() -> None:
    # The pad's two detuned oscillators show as two peaks; their power centroid is the pitch.
    audio = synth.render(single("organ", 57, voice="chords"))[RATE // 2:, 1].astype(np.float64)
    size = 8 * len(audio)
    power = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), size)) ** 2
    freqs = np.fft.rfftfreq(size, 1.0 / RATE)
    band = (freqs > 220.0 * 2 ** (-0.3 / 12)) & (freqs < 220.0 * 2 ** (0.3 / 12))
    centre = (freqs[band] * power[band]).sum() / power[band].sum()
    assert abs(1200.0 * np.log2(centre / 220.0)) < 1.0


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_note_edges_do_not_click(instrument: str) -> None:
    audio = synth.render(single(instrument, 46, beats=1.5))[:, 0].astype(np.float64)
    attack = round(synth.MELODY_TIMBRES[instrument].attack * RATE)
    gate, window = round(0.75 * RATE), RATE // 10
    step = np.abs(np.diff(audio))
    # Edges step no further than the waveform's own steepest step next to them while the key is down.
    after_attack = step[attack:attack + window].max()
    before_release = step[gate - window:gate].max()
    assert audio[0] == 0.0 and step[:attack].max() <= 1.1 * after_attack
    assert step[gate:].max() <= 1.1 * before_release and np.abs(audio[-200:]).max() == 0.0
    # A rectangular gate would cut the sounding wave mid-swing: a step as big as the wave itself.
    assert np.abs(audio[gate - window:gate]).max() > 2.0 * 1.1 * before_release


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_loop_is_exactly_the_bars_and_wraps_without_a_click(instrument: str) -> None:
    piece = Piece(Metre(7, 8), 97.0, 3, 0, "major", instrument, True, [
        Note(0.0, 1.0, 45, 110),
        Note(0.0, 10.5, 57, 90, "chords"),  # held over the wrap
        Note(9.5, 1.0, 45, 110),  # ends exactly at the wrap: its release must fit inside
        Note(10.0, 0.5, 33, 100, "bass"),
    ])
    audio = synth.render(piece).astype(np.float64)
    assert audio.shape == (round(3 * 3.5 * 60.0 / 97.0 * RATE), 2)
    step = np.abs(np.diff(audio, axis=0)).max()
    wrap = np.abs(audio[0] - audio[-1]).max()
    assert wrap <= step and np.abs(audio[-1]).max() < 1e-3


def test_a_note_starting_after_a_loop_ends_is_refused() -> None:
    piece = single("organ", 60, loop=True)
    piece.notes.append(Note(8.0, 1.0, 60))
    with pytest.raises(ValueError, match="after the piece ends"):
        synth.render(piece)


def test_a_piece_that_does_not_loop_keeps_its_release_tail() -> None:
    piece = song("lead", bars=2)
    audio = synth.render(piece)
    assert audio.shape[0] == round(8 * 60.0 / 128.0 * RATE) + round(synth.TAIL_SECONDS * RATE)
    tail = audio[round(8 * 60.0 / 128.0 * RATE):]
    assert np.abs(tail[:RATE // 10]).max() > 1e-3  # the last notes ring on past the bar line
    assert np.abs(tail[-RATE // 10:]).max() == 0.0  # and have died away before the end


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_streamed_chunks_equal_one_shot_render(instrument: str, loop: bool) -> None:
    piece = song(instrument, loop=loop, bars=6)
    whole = synth.render(piece)
    renderer = synth.Renderer(piece)
    chunks = []
    for bar, notes in enumerate(by_bar(piece)):
        renderer.add(reversed(notes))  # a different order from the one-shot render: same bits
        chunks.append(renderer.take(piece.bar_start(bar)))  # everything before this bar is final
    chunks.append(renderer.finish())
    streamed = np.concatenate(chunks)
    assert streamed.dtype == np.float32 and streamed.shape == whole.shape
    assert np.array_equal(streamed, whole)
    assert np.array_equal(synth.render(piece), whole)  # and again: deterministic


def test_adding_a_note_before_audio_already_taken_is_refused() -> None:
    piece = song("pluck", bars=2)
    renderer = synth.Renderer(piece)
    renderer.add(by_bar(piece)[1])
    renderer.take(piece.bar_start(1) + 1.0)
    with pytest.raises(ValueError, match="already taken"):
        renderer.add([Note(piece.bar_start(1), 1.0, 60)])


def test_velocity_scales_amplitude() -> None:
    loud = synth.render(single("organ", 60, velocity=120))
    soft = synth.render(single("organ", 60, velocity=60))
    ratio = np.abs(soft).max() / np.abs(loud).max()
    assert ratio == pytest.approx((60 / 120) ** 2, rel=1e-3)


def test_melody_and_accompaniment_sit_on_opposite_sides_below_the_melody() -> None:
    melody = synth.render(single("organ", 64, velocity=90))
    chords = synth.render(single("organ", 64, velocity=90, voice="chords"))
    bass = synth.render(single("organ", 40, velocity=90, voice="bass"))
    level = np.sqrt((melody.astype(np.float64) ** 2).mean(axis=0))
    assert level[0] > 1.5 * level[1]
    for accompaniment in (chords, bass):
        side = np.sqrt((accompaniment.astype(np.float64) ** 2).mean(axis=0))
        assert side[1] > side[0] and side.sum() < level.sum()
    left, right = synth.pan_gains(-0.3)
    assert left**2 + right**2 == pytest.approx(1.0)


def test_unknown_instrument_and_voice_are_refused() -> None:
    with pytest.raises(ValueError, match="instrument"):
        synth.Renderer(single("kazoo", 60))
    with pytest.raises(ValueError, match="voice"):
        synth.render(single("organ", 60, voice="drums"))


def test_gain_then_limiter_keeps_peaks_below_minus_one_dbfs() -> None:
    audio = synth.render(song("lead", bars=4))
    loud = synth.apply_gain(audio, 24.0)
    assert np.abs(loud).max() <= synth.CEILING
    assert np.abs(loud).max() > 0.99 * synth.CEILING  # it did have to limit
    quiet = synth.apply_gain(audio, -6.0)
    assert np.abs(audio).max() * 10 ** (-6 / 20) < synth.KNEE  # below the knee: plain gain
    assert np.allclose(quiet, audio * np.float32(10 ** (-6 / 20)), rtol=0, atol=0)
    # Memoryless: limiting streamed chunks gives the same samples as limiting the whole.
    chunks = [synth.apply_gain(chunk, 24.0) for chunk in np.array_split(audio, 7)]
    assert np.array_equal(np.concatenate(chunks), loud)

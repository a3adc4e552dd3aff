"""The SoundFont performer: tuned instruments that sound like their names, stems that sum to the
mix, streaming equal to one-shot, loops whose tail wraps into their start."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from museforge.plugins.music import melody as melody_module
from museforge.plugins.music import performer as performer_module
from museforge.plugins.music import render_pool as render_pool_module
from museforge.plugins.music import soundfont_subset
from museforge.plugins.music.audio_formats import pcm16_bytes
from museforge.plugins.music.general_midi import resolve_program
from museforge.plugins.music.limiter import CEILING, KNEE, apply_gain
from museforge.plugins.music.midi_file import block_midi
from museforge.plugins.music.performer import BLOCK_SECONDS, TAIL_SECONDS, Performer, perform
from museforge.plugins.music.render_pool import Rendering, RenderPool
from museforge.plugins.music.score import Metre, Note, Piece
from museforge.plugins.music.soundfont import SoundFont, default_soundfont, render_midi, wav_audio
from tests.plugins.music.pieces import BAND, by_bar, song

RATE = 48000


@pytest.fixture(scope="module")
def font() -> SoundFont:
    return default_soundfont()


def single(instrument: str, pitch: int, seconds: float = 2.0, voice: str = "melody",
           loop: bool = False) -> Piece:
    return Piece(Metre(4, 4), 60.0, 1, 0, "major", {voice: resolve_program(instrument)}, loop,
                 [Note(0.0, seconds, pitch, 100, voice)])


def envelope(audio: np.ndarray, rate: int = RATE) -> np.ndarray:
    mono = audio.astype(np.float64).mean(axis=1)
    return np.sqrt(np.convolve(mono**2, np.ones(rate // 100) / (rate // 100), "same"))


def fundamental(audio: np.ndarray, expected: float, rate: int = RATE) -> float:
    """The strongest spectral peak within a fifth of ``expected`` Hz, refined by its neighbours."""
    mono = audio.astype(np.float64).mean(axis=1)[round(0.2 * rate):round(1.2 * rate)]
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono)), 8 * len(mono)))
    freqs = np.fft.rfftfreq(8 * len(mono), 1.0 / rate)
    band = np.flatnonzero((freqs > expected / 1.5) & (freqs < expected * 1.5))
    return float(freqs[band[np.argmax(spectrum[band])]])


@pytest.mark.parametrize("instrument, pitch", [("Violin", 69), ("Orchestral Harp", 69), ("Accordion", 64),
                                               ("Acoustic Guitar (nylon)", 57), ("Cello", 45),
                                               ("Acoustic Bass", 40)])
def test_instruments_play_the_pitch_asked_for(font: SoundFont, instrument: str, pitch: int) -> None:
    audio = perform(single(instrument, pitch), font).audio()
    expected = 440.0 * 2 ** ((pitch - 69) / 12)
    assert abs(1200 * np.log2(fundamental(audio, expected) / expected)) < 30  # cents


def test_plucked_and_sustained_instruments_sound_like_their_names(font: SoundFont) -> None:
    """A harp or guitar string dies away while the key is held; an organ, accordion or cello holds."""
    def held_level(instrument: str, pitch: int = 69) -> float:
        env = envelope(perform(single(instrument, pitch, seconds=2.0), font).audio())
        return float(env[round(1.5 * RATE)] / env.max())

    for plucked in ("Orchestral Harp", "Acoustic Guitar (nylon)", "Acoustic Bass"):
        assert held_level(plucked) < 0.3, plucked
    for sustained in ("Church Organ", "Accordion", "Cello"):
        assert held_level(sustained) > 0.6, sustained
    # A harp is struck, a choir swells in: seconds to 90% of the peak.
    def rise(instrument: str) -> float:
        env = envelope(perform(single(instrument, 69), font).audio())
        return float(np.argmax(env > 0.9 * env.max()) / RATE)

    assert rise("Orchestral Harp") < 0.05 and rise("Choir Aahs") > 0.5


def test_streamed_takes_equal_the_one_shot_performance(font: SoundFont) -> None:
    piece = song(bars=10)  # 19 s: four blocks
    whole = perform(piece, font).audio()
    streaming = Performer(piece, font, pool=RenderPool(0))  # in-thread: every take hands out what it can
    chunks = []
    for bar, notes in enumerate(by_bar(piece)):
        streaming.add(reversed(notes))  # another order within the bar: the same bits
        if bar < piece.bars - 1:
            chunks.append(streaming.take(piece.bar_start(bar + 1)))
    chunks.append(streaming.finish())
    assert sum(len(chunk) > 0 for chunk in chunks) > 2  # it did hand audio out before the end
    assert np.array_equal(np.concatenate(chunks), whole)
    assert np.array_equal(perform(piece, font).audio(), whole)  # and again: deterministic


class _Unfinished(Rendering):
    """An in-thread render that reports itself done only once its audio was asked for."""

    def __init__(self, args: tuple[str, int, bytes, bool]) -> None:
        super().__init__(None, args)
        self.asked = False

    def done(self) -> bool:
        return self.asked

    def result(self) -> bytes:
        self.asked = True
        return super().result()


class _SlowPool(RenderPool):
    """Renders in the asking thread, as late as it can: every block is still "rendering" when
    the performer looks, until the performer waits for it."""

    def __init__(self) -> None:
        super().__init__(0)

    def submit(self, font: SoundFont, midi: bytes, whole: bool = False) -> Rendering:
        return _Unfinished((str(font.path), font.path.stat().st_mtime_ns, midi, whole))


def test_the_end_is_handed_out_block_by_block_as_renders_complete(font: SoundFont) -> None:
    piece = song(bars=10)  # 19 s: four blocks
    whole = perform(piece, font).audio()
    streaming = Performer(piece, font, pool=_SlowPool())
    chunks = []
    for bar, notes in enumerate(by_bar(piece)):
        streaming.add(notes)
        if bar < piece.bars - 1:
            chunks.append(streaming.take(piece.bar_start(bar + 1)))
    ending = list(streaming.finishing())
    # The blocks still rendering at the end come out one at a time, not as one piece at the end.
    assert sum(len(part) > 0 for part in ending) >= 3
    assert np.array_equal(np.concatenate(chunks + ending), whole)
    assert [len(part) for part in streaming.finishing()] == [0]  # finished: nothing more
    loop = song(bars=10, loop=True)
    looping = Performer(loop, font, pool=_SlowPool())
    for bar, notes in enumerate(by_bar(loop)):
        looping.add(notes)
        if bar < loop.bars - 1:
            looping.take(loop.bar_start(bar + 1))
    parts = list(looping.finishing())  # a loop's start is final only once its tail wrapped in: at once
    assert len(parts) == 1 and np.array_equal(parts[0], perform(loop, font).audio())


def test_the_first_chunk_waits_with_the_block_past_the_look_ahead_already_sent(font: SoundFont) -> None:
    # Composing one block past the loudness look-ahead before waiting for it keeps the render
    # processes busy while the gain is set; the audio is the same either way.
    piece = song(bars=16)  # 30 s: eight blocks
    stream = melody_module._Stream(0, piece, font, 48000, ogg=False)
    stream.renderer = Performer(piece, font, pool=_SlowPool())  # nothing renders until waited for
    sent_at_first, chunks = None, []
    for bar, notes in enumerate(by_bar(piece)):
        stream.renderer.add(notes)
        if bar < piece.bars - 1:
            chunks += list(stream.bar_done(bar + 1))
            if chunks and sent_at_first is None:
                sent_at_first = stream.renderer.sent_frames()
    chunks += list(stream.finish())
    assert sent_at_first is not None
    assert sent_at_first >= stream.lookahead_frames + round(BLOCK_SECONDS * 48000)
    assert sent_at_first < piece.bar_start(piece.bars - 1) * piece.seconds_per_beat * 48000  # not at the end
    assert b"".join(chunk.data for chunk in chunks) == pcm16_bytes(stream.samples())


def test_render_processes_give_the_bytes_the_calling_thread_gives(font: SoundFont) -> None:
    pool = RenderPool(2)
    try:
        piece = song(bars=10)
        for separate, kill in ((False, False), (True, False), (False, True)):
            here = perform(piece, font, separate=separate, pool=RenderPool(0))
            streaming = Performer(piece, font, separate=separate, pool=pool)
            chunks = []
            for bar, notes in enumerate(by_bar(piece)):
                streaming.add(notes)
                if bar < piece.bars - 1:
                    chunks.append(streaming.take(piece.bar_start(bar + 1)))
                if kill and bar == 4:  # processes lost mid-piece: their blocks render again in-thread
                    assert pool.pids()
                    for pid in pool.pids():
                        os.kill(pid, signal.SIGKILL)
            chunks.append(streaming.finish())
            assert np.array_equal(np.concatenate(chunks), here.audio()), (separate, kill)
            if separate:
                assert all(np.array_equal(streaming.stems()[v], here.stems()[v]) for v in here.stems())
        assert 1 <= len(pool.pids()) <= 2  # the lost ones were replaced, no more than asked for
    finally:
        pool.shutdown()
    assert not pool.pids()


def test_a_block_the_renderer_crashes_on_fails_its_request_not_the_server(font: SoundFont,
                                                                         tmp_path: Path) -> None:
    """A bank of no preset makes the renderer crash (a segfault, not a panic). Two processes die on
    the block and the request gets a ValueError; rendered again in this process, as a lost block
    once was, it would have ended the test run (and a server) there."""
    parsed = soundfont_subset._parse(font.data())
    assert parsed is not None
    empty = tmp_path / "Empty.sf2"
    empty.write_bytes(soundfont_subset._build(parsed, []))
    bank = SoundFont("Empty", empty, "unknown", "")
    pool = RenderPool(1)
    try:
        midi = block_midi([Note(0.0, 1.0, 60)], {"melody": 0}, 120.0, 0.0, 2.0)
        with pytest.raises(ValueError, match="Empty could not be played: the renderer stopped on this block "
                                             "in two processes"):
            pool.submit(bank, midi).result()
        assert pool.workers == 1 and len(pool.pids()) <= 1  # still rendering in processes
        assert len(wav_audio(pool.submit(font, midi).result())) > 0  # and a good bank still plays
    finally:
        pool.shutdown()


def test_a_bank_the_render_process_cannot_play_is_a_value_error(font: SoundFont, tmp_path: Path) -> None:
    broken = tmp_path / "Broken.sf2"
    broken.write_bytes(b"RIFF\0\0\0\0sfbk" + b"\0" * 64)
    midi = block_midi([Note(0.0, 1.0, 60)], {"melody": 0}, 120.0, 0.0, 2.0)
    assert len(render_pool_module.render_wav(str(font.path), font.path.stat().st_mtime_ns, midi)) > 1000
    pool = RenderPool(1)
    try:
        render = pool.submit(SoundFont("Broken", broken, "unknown", ""), midi)
        with pytest.raises(ValueError, match="SoundFont Broken could not be played"):
            render.result()
        assert np.array_equal(wav_audio(pool.submit(font, midi).result()), render_midi(font, midi))
    finally:
        pool.shutdown()


def test_a_render_process_that_stops_answering_is_replaced(font: SoundFont,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    midi = block_midi([Note(0.0, 1.0, 60)], {"melody": 0}, 120.0, 0.0, 2.0)
    pool = RenderPool(1)
    try:
        assert pool.submit(font, midi).result()  # started and answering
        [stuck] = pool.pids()
        os.kill(stuck, signal.SIGSTOP)
        monkeypatch.setattr(render_pool_module, "RENDER_TIMEOUT_SECONDS", 1.0)
        # The block is rendered again in this thread: the same bytes, and the process is replaced.
        assert np.array_equal(wav_audio(pool.submit(font, midi).result()), render_midi(font, midi))
        assert pool.submit(font, midi).result() and stuck not in pool.pids()
    finally:
        pool.shutdown()


def test_stems_sum_to_the_mix_and_each_holds_its_voice(font: SoundFont) -> None:
    piece = song(bars=4)
    piece.notes.extend(Note(bar * 4.0, 0.5, 41, 100, "percussion") for bar in range(4))
    piece.programs["percussion"] = 0
    separate = perform(piece, font, separate=True)
    stems, mix = separate.stems(), separate.audio()
    assert set(stems) == {"melody", "chords", "bass", "percussion"}
    assert all(stem.shape == mix.shape for stem in stems.values())
    assert np.abs(sum(stem.astype(np.float64) for stem in stems.values()) - mix).max() < 1e-6
    for voice, stem in stems.items():
        alone = Piece(piece.metre, piece.bpm, piece.bars, 0, "major", piece.programs, False,
                      [note for note in piece.notes if note.voice == voice])
        assert np.array_equal(perform(alone, font).audio(), stem), voice
    # Rendered in one pass instead, the mix differs only by the synthesizer's 16-bit output.
    together = perform(piece, font).audio().astype(np.float64)
    error = np.sqrt(((together - mix) ** 2).mean()) / np.sqrt((together**2).mean())
    assert 20 * np.log10(error) < -60


def test_a_loop_is_its_bars_long_and_its_tail_wraps_into_its_start(font: SoundFont) -> None:
    piece = Piece(Metre(7, 8), 97.0, 3, 0, "major", dict(BAND), True, [
        Note(0.0, 1.0, 57, 110),
        Note(0.0, 10.5, 60, 90, "chords"),  # held through the whole loop
        Note(9.5, 1.0, 69, 110),  # ends exactly at the wrap: its release and reverb ring on at the start
        Note(10.0, 0.5, 33, 100, "bass"),
    ])
    audio = perform(piece, font).audio().astype(np.float64)
    assert audio.shape == (round(3 * 3.5 * 60.0 / 97.0 * RATE), 2)
    steps = np.abs(np.diff(audio, axis=0)).max(axis=1)
    wrap = np.abs(audio[0] - audio[-1]).max()
    assert wrap <= np.percentile(steps, 99)
    # The first note starts at 0, so compare with the piece without its last bar's notes: the
    # difference at the start is the wrapped tail, and it is there.
    piece.notes = piece.notes[:2]
    unwrapped = perform(piece, font).audio().astype(np.float64)
    assert np.abs(audio[:RATE // 10] - unwrapped[:RATE // 10]).max() > 1e-3


def test_a_piece_that_does_not_loop_keeps_its_tail(font: SoundFont) -> None:
    piece = song(bars=2)
    audio = perform(piece, font).audio()
    end = round(8 * 60.0 / 128.0 * RATE)
    assert audio.shape[0] == end + round(TAIL_SECONDS * RATE)
    tail = np.abs(audio[end:]).max(axis=1)
    assert tail[:RATE // 10].max() > 1e-3  # the last notes ring on past the bar line
    assert tail[-RATE // 10:].max() < 1e-3 * np.abs(audio).max() * 10  # and have all but died away


def test_44100_is_in_tune_and_as_long(font: SoundFont) -> None:
    piece = single("Violin", 69)
    audio = perform(piece, font, sample_rate=44100).audio()
    assert len(audio) == round(4.0 * 44100) + round(TAIL_SECONDS * 44100)
    assert abs(1200 * np.log2(fundamental(audio, 440.0, 44100) / 440.0)) < 30


def test_bad_notes_and_rates_are_refused(font: SoundFont) -> None:
    with pytest.raises(ValueError, match="after the piece ends"):
        perform(Piece(Metre(4, 4), 60.0, 1, 0, "major", dict(BAND), True, [Note(4.0, 1.0, 60)]), font)
    with pytest.raises(ValueError, match="voice"):
        perform(single("Violin", 60, voice="drums"), font)
    with pytest.raises(ValueError, match="sample_rate"):
        Performer(song(bars=1), font, sample_rate=22050)
    piece = song(bars=4)
    streaming = Performer(piece, font)
    streaming.add(by_bar(piece)[0] + by_bar(piece)[1] + by_bar(piece)[2])
    streaming.take(piece.bar_start(3))  # 5.6 s of music: rendered
    with pytest.raises(ValueError, match="already rendered"):
        streaming.add([Note(piece.bar_start(1), 1.0, 60)])
    with pytest.raises(RuntimeError, match="finished"):
        streaming.stems()


def test_blocks_are_rendered_in_few_calls(font: SoundFont) -> None:
    class Counted(RenderPool):
        calls = 0

        def submit(self, bank: SoundFont, midi: bytes, whole: bool = False) -> Rendering:
            Counted.calls += 1
            return super().submit(bank, midi, whole)

    perform(song(bars=16), font, pool=Counted(0))  # 30 s
    assert Counted.calls <= 30 / performer_module.BLOCK_SECONDS + 1


def test_gain_then_limiter_keeps_peaks_below_minus_one_dbfs(font: SoundFont) -> None:
    audio = perform(song(bars=4), font).audio()
    loud = apply_gain(audio, 40.0)
    assert np.abs(loud).max() <= CEILING
    assert np.abs(loud).max() > 0.99 * CEILING  # it did have to limit
    gain = 20 * np.log10(0.5 * KNEE / np.abs(audio).max())
    quiet = apply_gain(audio, gain)  # below the knee: plain gain
    assert np.allclose(quiet, audio * np.float32(10 ** (gain / 20)), rtol=0, atol=0)

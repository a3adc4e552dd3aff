"""WAV, FLAC, Ogg and MIDI encoders: decodable, exact where lossless, reproducible, with provenance."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from concurrent.futures import CancelledError, Future
from pathlib import Path

import numpy as np
import pytest
import soundfile

from museforge import Media
from museforge.plugins.music import audio_formats
from museforge.plugins.music.audio_formats import AUDIO_ENCODERS
from museforge.plugins.music.limiter import apply_gain
from museforge.plugins.music.performer import perform
from museforge.plugins.music.score import Performance
from museforge.plugins.music.soundfont import default_soundfont
from tests.plugins.music.pieces import song

RATE = 48000
ROOT = Path(__file__).resolve().parents[3]
# Longer than the ~2 kB libsndfile's WAV reader keeps: the reader must walk the RIFF itself.
PROVENANCE = {"generator": "music.melody", "seed": "42", "museforge_version": "0.1.0",
              "models": json.dumps([{"name": "melody", "sha256": "0f" * 32}] * 40)}
ENCODERS = {encoder.name: encoder for encoder in AUDIO_ENCODERS}


@pytest.fixture(scope="module")
def performance() -> Performance:
    piece = song(46, bars=4)  # Orchestral Harp
    return Performance(piece, apply_gain(perform(piece, default_soundfont()).audio(), 24.0), RATE)


def encode(name: str, performance: Performance, provenance: dict[str, str] = PROVENANCE) -> bytes:
    return ENCODERS[name].encode(Media("audio", performance, 0), provenance)


def test_encoders_are_declared() -> None:
    assert [(e.name, e.modality, e.media_type, e.extension) for e in AUDIO_ENCODERS] == [
        ("wav", "audio", "audio/wav", "wav"), ("flac", "audio", "audio/flac", "flac"),
        ("ogg", "audio", "audio/ogg", "ogg"), ("mid", "audio", "audio/midi", "mid")]


@pytest.mark.parametrize("name, container", [("wav", "WAV"), ("flac", "FLAC"), ("ogg", "OGG")])
def test_decodes_to_the_right_shape(name: str, container: str, performance: Performance) -> None:
    samples = np.asarray(performance.samples)
    with soundfile.SoundFile(io.BytesIO(encode(name, performance))) as sound:
        assert (sound.format, sound.samplerate, sound.channels, sound.frames) == (
            container, RATE, 2, samples.shape[0])
        decoded = sound.read(dtype="float32")
    if name == "ogg":  # lossy, but the same music: strongly correlated with the input
        assert np.corrcoef(decoded[:, 0], samples[:, 0])[0, 1] > 0.95
    else:
        assert np.abs(decoded - samples).max() <= 1.0 / 32768


@pytest.mark.parametrize("name", ["wav", "flac"])
def test_lossless_pcm_is_exactly_the_16_bit_conversion(name: str, performance: Performance) -> None:
    decoded, _ = soundfile.read(io.BytesIO(encode(name, performance)), dtype="int16")
    assert np.array_equal(decoded, audio_formats.pcm16(performance.samples))


def data_chunk(wav: bytes) -> bytes:
    pos = 12
    while pos + 8 <= len(wav):
        kind, size = wav[pos:pos + 4], struct.unpack("<I", wav[pos + 4:pos + 8])[0]
        if kind == b"data":
            return wav[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def test_streamed_pcm_chunks_equal_the_wav_data(performance: Performance) -> None:
    samples = np.asarray(performance.samples)
    streamed = b"".join(audio_formats.pcm16_bytes(chunk) for chunk in np.array_split(samples, 9))
    assert streamed == data_chunk(encode("wav", performance))


@pytest.mark.parametrize("name", ["wav", "flac", "ogg", "mid"])
def test_provenance_round_trips(name: str, performance: Performance) -> None:
    assert audio_formats.read_audio_provenance(encode(name, performance)) == PROVENANCE


def test_wav_without_provenance_reads_empty(performance: Performance) -> None:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((100, 2), np.int16), RATE, format="WAV", subtype="PCM_16")
    assert audio_formats.read_audio_provenance(buffer.getvalue()) == {}


@pytest.mark.parametrize("name", ["wav", "flac", "ogg", "mid"])
def test_same_input_same_bytes(name: str, performance: Performance) -> None:
    assert encode(name, performance) == encode(name, performance)


OGG_SCRIPT = """
import hashlib, sys
import numpy as np
from museforge import Media
from museforge.plugins.music.audio_formats import encode_ogg
from museforge.plugins.music.score import Metre, Performance, Piece
t = np.arange(48000) / 48000
samples = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], 1)
piece = Piece(Metre(4, 4), 120.0, 1, 0, "major")
data = encode_ogg(Media("audio", Performance(piece, samples.astype(np.float32)), 0), {"seed": "1"})
sys.stdout.write(hashlib.sha256(data).hexdigest())
"""


def test_ogg_bytes_are_reproducible_across_processes() -> None:
    # libsndfile draws each Ogg stream's serial number at random; the encoder pins it.
    runs = {subprocess.run([sys.executable, "-c", OGG_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                           check=True, env={"OMP_NUM_THREADS": "1", "PATH": ""}).stdout for _ in range(2)}
    assert len(runs) == 1 and len(next(iter(runs))) == 64


def test_ogg_crc_is_the_one_libsndfile_writes(performance: Performance) -> None:
    raw = audio_formats.write_sound(np.asarray(performance.samples)[:RATE], RATE, "OGG", "VORBIS", {})
    pos, checked = 0, 0
    while pos < len(raw):
        size = 27 + raw[pos + 26] + sum(raw[pos + 27:pos + 27 + raw[pos + 26]])
        page = bytearray(raw[pos:pos + size])
        crc = struct.unpack("<I", page[22:26])[0]
        page[22:26] = bytes(4)
        assert audio_formats.ogg_crc(bytes(page)) == crc
        pos, checked = pos + size, checked + 1
    assert checked >= 3
    pinned = audio_formats.with_serial(raw, 1234)
    assert pinned != raw and struct.unpack("<I", pinned[14:18])[0] == 1234
    assert np.array_equal(soundfile.read(io.BytesIO(pinned))[0], soundfile.read(io.BytesIO(raw))[0])


def test_mono_is_written_as_one_channel(performance: Performance) -> None:
    mono = Performance(performance.piece, np.asarray(performance.samples)[:, 0], RATE)
    with soundfile.SoundFile(io.BytesIO(encode("flac", mono))) as sound:
        assert sound.channels == 1


@pytest.mark.parametrize("name", ["wav", "flac", "ogg"])
def test_audio_formats_need_samples(name: str, performance: Performance) -> None:
    midi_only = Performance(performance.piece, None, RATE)
    with pytest.raises(ValueError, match="samples are None"):
        encode(name, midi_only)
    assert encode("mid", midi_only).startswith(b"MThd")  # MIDI needs no audio


def test_bad_media_is_refused(performance: Performance) -> None:
    with pytest.raises(ValueError, match="Performance"):
        ENCODERS["wav"].encode(Media("audio", np.zeros((10, 2)), 0), {})
    with pytest.raises(ValueError, match="NaN"):
        encode("wav", Performance(performance.piece, np.full((10, 2), np.nan, np.float32), RATE))
    with pytest.raises(ValueError, match="shape"):
        encode("wav", Performance(performance.piece, np.zeros((10, 2, 2), np.float32), RATE))


def test_pcm16_rounds_and_clips() -> None:
    pcm = audio_formats.pcm16(np.array([0.0, 0.5, -1.0, 1.0, 2.0, 1.4 / 32768, 1.6 / 32768], np.float32))
    assert pcm[:, 0].tolist() == [0, 16384, -32768, 32767, 32767, 1, 2]
    assert audio_formats.pcm16_bytes(np.array([[0.5, -0.5]])) == b"\x00\x40\x00\xc0"


def test_background_vorbis_gives_the_bytes_of_a_one_shot_encode(performance: Performance) -> None:
    # Fed in uneven pieces (as bars arrive), encoded under a placeholder comment, then
    # re-headed with the real provenance: the file must be exactly the one-shot encode.
    samples = np.asarray(performance.samples)
    background = audio_formats.BackgroundVorbis(RATE)
    for piece in np.array_split(samples, [1000, 1001, 9000, 30000, 70000]):
        background.feed(piece)
    streamed = Performance(performance.piece, samples, RATE, background.close())
    assert encode("ogg", streamed) == encode("ogg", performance)
    provenance = audio_formats.read_audio_provenance(encode("ogg", streamed))
    assert provenance == PROVENANCE


def test_background_vorbis_abort_and_failure() -> None:
    aborted = audio_formats.BackgroundVorbis(RATE)
    aborted.feed(np.zeros((RATE, 2), np.float32))
    aborted.abort()
    with pytest.raises(CancelledError):
        aborted.result.result(timeout=30)
    failed = audio_formats.BackgroundVorbis(RATE, channels=2)
    failed.feed(np.zeros((100, 3), np.float32))  # three channels into a stereo file
    with pytest.raises(Exception, match=r"channel|shape|dimension|mismatch"):
        failed.close().result(timeout=30)


def test_a_failed_background_encode_falls_back_to_the_samples(performance: Performance) -> None:
    broken: Future[bytes] = Future()
    broken.set_exception(RuntimeError("encoder thread died"))
    fallback = Performance(performance.piece, performance.samples, RATE, broken)
    assert encode("ogg", fallback) == encode("ogg", performance)

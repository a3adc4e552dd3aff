"""Audio output formats: WAV and FLAC (16-bit PCM), Ogg Vorbis, and MIDI, each with provenance.

``media.data`` is a ``Performance``. Where the provenance JSON goes (libsndfile writes
the string fields of its ``SoundFile``; what it keeps, checked with libsndfile 1.2.2):
- WAV: the LIST/INFO ``ICMT`` (comment) chunk, any length. libsndfile's reader drops INFO
  strings longer than about 2 kB, so ``read_audio_provenance`` walks the RIFF chunks itself.
- FLAC and Ogg Vorbis: the Vorbis comment ``COMMENT``, read back whole by libsndfile.
- MIDI: a text event in the conductor track (see midi_file.py).
WAV and FLAC bytes are a pure function of the input. libsndfile gives every Ogg stream a
random serial number, so we rewrite it (and each page's CRC) to one derived from the
provenance: with that, Ogg bytes are reproducible too (the Vorbis encoder itself is).
"""

from __future__ import annotations

import io
import logging
import queue
import struct
import threading
import zlib
from collections.abc import Mapping
from concurrent.futures import Future

import numpy as np
import soundfile

from museforge import Encoder, Media, provenance_from_text, provenance_json, quietly, software_tag

from .loop_points import add_loop_points
from .midi_file import read_midi_provenance, write_midi
from .ogg import ogg_crc, ogg_pages, vorbis_header_pages, with_serial
from .score import Performance

__all__ = ["AUDIO_ENCODERS", "BackgroundVorbis", "ogg_crc", "ogg_pages", "pcm16_bytes",
           "read_audio_provenance", "vorbis_header_pages", "with_serial"]

log = logging.getLogger("museforge.music")

PCM_SCALE = 32768.0  # the 1/32768 decoders divide by, so a round trip is within half an LSB
# Audio reaches libsndfile in blocks of this many frames. Its Vorbis encoder runs about
# 40 % faster than on one whole-piece write (0.27 s against 0.46 s for 31 s of stereo at
# 48 kHz), and its output depends on where the writes split the audio, so a fixed block
# keeps Ogg bytes a function of the samples alone.
WRITE_BLOCK = 4096


def as_frames(samples: object) -> np.ndarray:
    """Audio as [frames, channels] float32; a 1-D array is mono."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or not 1 <= array.shape[1] <= 8:
        raise ValueError(f"samples must be [frames] or [frames, channels<=8], got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("samples contain NaN or infinity")
    return array


def pcm16(samples: object) -> np.ndarray:
    """16-bit PCM: round to nearest, no dither, clip. Streamed chunks and the WAV agree exactly."""
    scaled = np.rint(as_frames(samples) * np.float32(PCM_SCALE))
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def pcm16_bytes(samples: object) -> bytes:
    """Interleaved little-endian int16, exactly the bytes of the WAV's data chunk for these samples."""
    return pcm16(samples).astype("<i2").tobytes()


def performance_audio(media: Media, format_name: str) -> tuple[Performance, np.ndarray]:
    performance = media.data
    if not isinstance(performance, Performance):
        raise ValueError(f"{format_name} encodes a Performance, got {type(performance).__name__}")
    if performance.samples is None:
        raise ValueError(f"{format_name} needs rendered audio, but the performance's samples are None "
                         "(only MIDI was rendered)")
    return performance, as_frames(performance.samples)


def write_sound(samples: np.ndarray, sample_rate: int, container: str, subtype: str,
                provenance: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", sample_rate, samples.shape[1], subtype, format=container) as out:
        # Strings must be set before the first write (FLAC and Ogg write their headers then).
        out.title = provenance.get("generator", "museforge")
        out.software = software_tag(provenance)
        out.comment = provenance_json(provenance)
        for start in range(0, len(samples), WRITE_BLOCK):
            out.write(samples[start:start + WRITE_BLOCK])
    return buffer.getvalue()


def looped(performance: Performance, samples: np.ndarray, container: str, data: bytes) -> bytes:
    """A loop's file carries its loop (the whole piece) where engines read it; others are as they were."""
    if not performance.piece.loop or not len(samples):
        return data
    return add_loop_points(data, container, 0, len(samples))


def encode_wav(media: Media, provenance: Mapping[str, str]) -> bytes:
    performance, samples = performance_audio(media, "wav")
    data = write_sound(pcm16(samples), performance.sample_rate, "WAV", "PCM_16", provenance)
    return looped(performance, samples, "wav", data)


def encode_flac(media: Media, provenance: Mapping[str, str]) -> bytes:
    performance, samples = performance_audio(media, "flac")
    data = write_sound(pcm16(samples), performance.sample_rate, "FLAC", "PCM_16", provenance)
    return looped(performance, samples, "flac", data)


def encode_ogg(media: Media, provenance: Mapping[str, str]) -> bytes:
    """Ogg Vorbis; audio already encoded in the background (``Performance.vorbis``) is
    used as it is, under header pages that carry this provenance."""
    performance, samples = performance_audio(media, "ogg")
    return looped(performance, samples, "ogg", _vorbis(performance, samples, provenance))


def _vorbis(performance: Performance, samples: np.ndarray, provenance: Mapping[str, str]) -> bytes:
    serial = zlib.crc32(provenance_json(provenance).encode())
    if performance.vorbis is not None:
        try:
            encoded = ogg_pages(performance.vorbis.result())
            silence = np.zeros((0, samples.shape[1]), np.float32)
            header = ogg_pages(write_sound(silence, performance.sample_rate, "OGG", "VORBIS", provenance))
            audio = encoded[vorbis_header_pages(encoded):]
            return with_serial(b"".join(header[:vorbis_header_pages(header)] + audio), serial)
        except Exception:  # a failed background encoder costs time, never the file
            log.exception("background Vorbis encoding failed; encoding again")
    data = write_sound(np.clip(samples, -1.0, 1.0), performance.sample_rate, "OGG", "VORBIS", provenance)
    return with_serial(data, serial)


class BackgroundVorbis:
    """Encodes audio to Ogg Vorbis in a thread of its own while more is being produced.

    libsndfile releases the GIL while it encodes, so on a second core the Ogg file is
    ready almost as soon as the last samples are. Writes go in ``WRITE_BLOCK`` frames, as
    ``write_sound``'s do, so the audio pages are the bytes a one-shot encode makes; the
    comment (the provenance, which holds figures known only at the end) is a placeholder
    that ``encode_ogg`` replaces with the real header pages.
    """

    _END = object()

    def __init__(self, sample_rate: int, channels: int = 2) -> None:
        self.sample_rate, self.channels = sample_rate, channels
        self.result: Future[bytes] = Future()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._abort = threading.Event()
        threading.Thread(target=self._run, name="vorbis-encoder", daemon=True).start()

    def feed(self, samples: np.ndarray) -> None:
        self._queue.put(np.clip(as_frames(samples), -1.0, 1.0))

    def close(self) -> Future[bytes]:
        """No more audio: the future gets the encoded stream."""
        self._queue.put(self._END)
        return self.result

    def abort(self) -> None:
        """Stop and drop everything (the request went away)."""
        self._abort.set()
        self._queue.put(self._END)

    def _run(self) -> None:
        try:
            buffer = io.BytesIO()
            with soundfile.SoundFile(buffer, "w", self.sample_rate, self.channels, "VORBIS",
                                     format="OGG") as out:
                out.comment = "museforge: replaced when the file is encoded"
                pending = np.zeros((0, self.channels), np.float32)
                while (item := self._queue.get()) is not self._END and not self._abort.is_set():
                    assert isinstance(item, np.ndarray)
                    pending = np.concatenate([pending, item])
                    whole = len(pending) - len(pending) % WRITE_BLOCK
                    for start in range(0, whole, WRITE_BLOCK):
                        out.write(pending[start:start + WRITE_BLOCK])
                    pending = pending[whole:]
                if self._abort.is_set():
                    self.result.cancel()
                    return
                if len(pending):
                    out.write(pending)
            self.result.set_result(buffer.getvalue())
        except BaseException as exc:  # the caller encodes again from the samples
            self.result.set_exception(exc)


def encode_midi(media: Media, provenance: Mapping[str, str]) -> bytes:
    performance = media.data
    if not isinstance(performance, Performance):
        raise ValueError(f"mid encodes a Performance, got {type(performance).__name__}")
    return write_midi(performance.piece, provenance)


def riff_comment(data: bytes) -> str | None:
    """The LIST/INFO ICMT string of a RIFF (WAV) file, if it has one."""
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if kind == b"LIST" and data[pos + 8:pos + 12] == b"INFO":
            sub, end = pos + 12, pos + 8 + size
            while sub + 8 <= end:
                name, length = data[sub:sub + 4], struct.unpack("<I", data[sub + 4:sub + 8])[0]
                if name == b"ICMT":
                    return data[sub + 8:sub + 8 + length].rstrip(b"\0").decode("utf-8", "replace")
                sub += 8 + length + (length & 1)
        pos += 8 + size + (size & 1)  # RIFF chunks are padded to even sizes
    return None


def read_audio_provenance(data: bytes) -> dict[str, str]:
    """The provenance a museforge WAV, FLAC, Ogg or MIDI file carries (empty when it has none)."""
    if data[:4] == b"MThd":
        return read_midi_provenance(data)
    if data[:4] == b"RIFF":
        text = riff_comment(data)
    else:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            text = sound.comment
    return provenance_from_text(text)


READ_AUDIO_PROVENANCE = quietly(read_audio_provenance)
AUDIO_ENCODERS = (
    Encoder("wav", "audio", "audio/wav", "wav", encode_wav, READ_AUDIO_PROVENANCE),
    Encoder("flac", "audio", "audio/flac", "flac", encode_flac, READ_AUDIO_PROVENANCE),
    Encoder("ogg", "audio", "audio/ogg", "ogg", encode_ogg, READ_AUDIO_PROVENANCE),
    Encoder("mid", "audio", "audio/midi", "mid", encode_midi, READ_AUDIO_PROVENANCE),
)

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
import json
import struct
import zlib
from collections.abc import Mapping

import numpy as np
import soundfile

from museforge import Encoder, Media

from .midi_file import read_midi_provenance, write_midi
from .score import Performance

PCM_SCALE = 32768.0  # the 1/32768 decoders divide by, so a round trip is within half an LSB


def provenance_json(provenance: Mapping[str, str]) -> str:
    return json.dumps(dict(provenance), sort_keys=True)


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
        out.software = f"museforge {provenance.get('museforge_version', '')}".strip()
        out.comment = provenance_json(provenance)
        out.write(samples)
    return buffer.getvalue()


def encode_wav(media: Media, provenance: Mapping[str, str]) -> bytes:
    performance, samples = performance_audio(media, "wav")
    return write_sound(pcm16(samples), performance.sample_rate, "WAV", "PCM_16", provenance)


def encode_flac(media: Media, provenance: Mapping[str, str]) -> bytes:
    performance, samples = performance_audio(media, "flac")
    return write_sound(pcm16(samples), performance.sample_rate, "FLAC", "PCM_16", provenance)


def encode_ogg(media: Media, provenance: Mapping[str, str]) -> bytes:
    performance, samples = performance_audio(media, "ogg")
    data = write_sound(np.clip(samples, -1.0, 1.0), performance.sample_rate, "OGG", "VORBIS", provenance)
    return with_serial(data, zlib.crc32(provenance_json(provenance).encode()))


def encode_midi(media: Media, provenance: Mapping[str, str]) -> bytes:
    performance = media.data
    if not isinstance(performance, Performance):
        raise ValueError(f"mid encodes a Performance, got {type(performance).__name__}")
    return write_midi(performance.piece, provenance)


BIT_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, unreflected, no init or final xor).

    zlib's CRC-32 is the reflected form of the same polynomial: fed bit-reversed bytes,
    with its init and final xor undone, it gives the bit-reversed Ogg CRC, at C speed.
    """
    reflected = zlib.crc32(page.translate(BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def with_serial(data: bytes, serial: int) -> bytes:
    """The Ogg stream with every page's serial number set to ``serial`` and its CRC redone."""
    out, pos = bytearray(), 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        segments = data[pos + 26]
        size = 27 + segments + sum(data[pos + 27:pos + 27 + segments])
        page = bytearray(data[pos:pos + size])
        page[14:18] = struct.pack("<I", serial & 0xFFFFFFFF)
        page[22:26] = b"\0\0\0\0"
        page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
        out += page
        pos += size
    return bytes(out)


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
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(key): str(value) for key, value in found.items()} if isinstance(found, dict) else {}


AUDIO_ENCODERS = (
    Encoder("wav", "audio", "audio/wav", "wav", encode_wav),
    Encoder("flac", "audio", "audio/flac", "flac", encode_flac),
    Encoder("ogg", "audio", "audio/ogg", "ogg", encode_ogg),
    Encoder("mid", "audio", "audio/midi", "mid", encode_midi),
)

"""Audio files as effect inputs: recognised by their first bytes, probed, handed over as a Sound."""

from __future__ import annotations

from pathlib import Path

from ..effect import Sound
from .audio_decode import SoundError, probe_sound
from .decoders import DecodeError
from .video_inputs import input_head


def sniff_audio(head: bytes) -> str | None:
    """The format from a file's first bytes: "wav", "flac", "ogg", "mp3" or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def decode_sound(data: bytes, path: Path | None, name: str, accepted: tuple[str, ...]) -> Sound:
    """A Sound of an audio file given as ``data`` or (callers in this process) lying at ``path``;
    DecodeError saying why it cannot be used."""
    fmt = sniff_audio(input_head(data, path))
    if fmt is None:
        raise DecodeError("not an audio file museforge reads (WAV, FLAC, Ogg Vorbis or MP3)")
    if fmt not in accepted:
        raise DecodeError(f"{fmt} input is not accepted here; use one of {list(accepted)}")
    label = name or (path.name if path is not None else f"input.{fmt}")
    try:
        info = probe_sound(path) if path is not None else probe_sound(Path(label), data=data)
    except SoundError as exc:
        raise DecodeError(str(exc)) from None
    return Sound(info, fmt, label)

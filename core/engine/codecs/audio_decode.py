"""Sound decoded to samples through PyAV: an audio file given as an effect's input, or a video's
sound track, resampled to the rate and channels asked for.

What a soundtrack needs is whole seconds or minutes of it at once (to find its beats, to lay it
under a cut), so a span is decoded to one float32 array: a minute of 48 kHz stereo is 23 MB.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .timecode import length_text
from .video import pyav

MAX_SOUND_SECONDS = 2 * 3600


class SoundError(ValueError):
    """An audio input that cannot be used; the message names it."""


@dataclass(frozen=True)
class AudioInfo:
    path: Path  # where it lies, or only its name when it came as bytes
    rate: int
    channels: int
    seconds: float
    codec: str
    tags: Mapping[str, str]
    data: bytes | None = field(default=None, repr=False, compare=False)

    def open(self) -> Any:
        av = pyav()
        return av.open(io.BytesIO(self.data)) if self.data is not None else av.open(str(self.path))


def probe_sound(path: Path, data: bytes | None = None) -> AudioInfo:
    """What an audio file holds, or SoundError saying why it cannot be used."""
    av = pyav()
    try:
        container = av.open(io.BytesIO(data)) if data is not None else av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise SoundError(f"{path.name}: not a sound file this build of FFmpeg reads, or damaged "
                         f"({getattr(exc, 'strerror', None) or exc})") from None
    with container:
        if not container.streams.audio:
            raise SoundError(f"{path.name}: holds no sound")
        stream = container.streams.audio[0]
        seconds = (float(stream.duration * stream.time_base) if stream.duration
                   else container.duration / 1e6 if container.duration else 0.0)
        if seconds <= 0:
            raise SoundError(f"{path.name}: holds no sound (zero length)")
        if seconds > MAX_SOUND_SECONDS:
            raise SoundError(f"{path.name}: {length_text(seconds)} long; at most "
                             f"{length_text(MAX_SOUND_SECONDS)} is taken")
        tags = {**dict(container.metadata), **dict(stream.metadata)}
        return AudioInfo(path, int(stream.rate), int(stream.channels), seconds, stream.codec_context.name,
                         {k.lower(): str(v) for k, v in tags.items()}, data)


def decode_samples(open_file: Callable[[], Any], rate: int, channels: int, start: float = 0.0,
                   seconds: float | None = None) -> np.ndarray:
    """float32 samples (frames, channels) of the first sound stream, from ``start`` for ``seconds``
    (None: to the end), resampled; exactly ``seconds * rate`` frames when ``seconds`` is given
    (silence past the end)."""
    av = pyav()
    layout = {1: "mono", 2: "stereo"}[channels]
    wanted = None if seconds is None else round(seconds * rate)
    skip = round(start * rate)
    chunks: list[np.ndarray] = []
    got = 0
    with open_file() as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)
        if start > 0:  # from the packet before ``start``; samples are counted from its time
            container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
        position: int | None = None
        try:
            for frame in container.decode(stream):
                if position is None:  # the resampled sound runs on from the first frame's time
                    position = round((frame.time or 0.0) * rate)
                for out in resampler.resample(frame):
                    block = out.to_ndarray().reshape(-1, channels)
                    begin = max(0, skip - position)
                    position += len(block)
                    block = block[begin:]
                    if len(block):
                        chunks.append(block)
                        got += len(block)
                if wanted is not None and got >= wanted:
                    break
        except av.error.FFmpegError as exc:
            raise SoundError(f"sound damaged after {got / rate:.2f} s ({exc})") from None
    samples = np.concatenate(chunks) if chunks else np.zeros((0, channels), np.float32)
    if wanted is not None:
        samples = samples[:wanted]
        if len(samples) < wanted:
            samples = np.concatenate([samples, np.zeros((wanted - len(samples), channels), np.float32)])
    return np.ascontiguousarray(samples, dtype=np.float32)

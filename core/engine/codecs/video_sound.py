"""Sound under a video being written: the source's own track carried (copied, or re-encoded when
the container cannot hold its codec), or samples laid under it; muxed a little at a time as the
video reaches each moment, so never more than a frame's worth of sound is held.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .video import VideoInfo, pyav

# Audio codecs each container holds as they are; others are re-encoded to the first.
AUDIO_KEPT = {".mp4": ("aac", "mp3", "ac3", "alac", "opus"),
              ".mov": ("pcm_s16le", "aac", "pcm_s24le", "alac", "mp3")}


def _seconds(packet: Any) -> float:
    return float(packet.dts * packet.time_base)


SOUND_RATE = 48000


def clip_samples(info: VideoInfo, rate: int, channels: int, start: float = 0.0,
                 seconds: float | None = None) -> np.ndarray:
    """The sound under a video's frames from ``start`` (seconds after its first frame) for ``seconds``,
    as :func:`decode_samples` gives it: read on the file's clock from the first frame's moment,
    with silence before the sound where it begins later than the frames."""
    from .audio_decode import decode_samples

    with info.open() as container:
        stream = container.streams.audio[0]
        begins = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    wanted = info.start + start
    lead = round((begins - wanted) * rate) if begins > wanted else 0
    if seconds is not None:
        lead = min(lead, round(seconds * rate))
    rest = None if seconds is None else seconds - lead / rate
    samples = decode_samples(info.open, rate, channels, wanted + lead / rate, rest)
    return np.concatenate([np.zeros((lead, channels), np.float32), samples]) if lead else samples


class SamplesCarry:
    """Sound given as samples (float32, frames x channels, at SOUND_RATE) encoded into ``out``
    (AAC in MP4, 16-bit PCM in QuickTime) a little at a time as the video reaches each moment."""

    BLOCK = 1024  # samples per encoded frame (AAC's own)

    def __init__(self, samples: np.ndarray, out: Any, suffix: str) -> None:
        self.samples = np.ascontiguousarray(samples, dtype=np.float32)
        self.layout = {1: "mono", 2: "stereo"}[self.samples.shape[1]]
        codec = AUDIO_KEPT[suffix][0]
        self.stream = out.add_stream(codec, rate=SOUND_RATE, layout=self.layout)
        self.out, self.done = out, 0
        self.convert = pyav().AudioResampler(format=self.stream.codec_context.format.name, layout=self.layout,
                                             rate=SOUND_RATE)

    def mux_until(self, seconds: float | None) -> None:
        av = pyav()
        end = len(self.samples) if seconds is None else min(len(self.samples), round(seconds * SOUND_RATE))
        while self.done + self.BLOCK <= end or (seconds is None and self.done < end):
            block = self.samples[self.done:self.done + self.BLOCK]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout=self.layout)
            frame.sample_rate, frame.pts = SOUND_RATE, self.done
            for converted in self.convert.resample(frame):
                self.out.mux(self.stream.encode(converted))
            self.done += len(block)
        if seconds is None:
            for converted in self.convert.resample(None):
                self.out.mux(self.stream.encode(converted))
            self.out.mux(self.stream.encode(None))


class AudioCarry:
    """The source's first audio stream into ``out``: copied, or re-encoded when ``out`` cannot
    hold its codec; muxed a little at a time as the video reaches each moment. ``start`` and
    ``end`` (seconds of the video) keep the sound of a part of the source, to the nearest audio
    packet. ``origin`` is where the video's first frame lies on the file's clock: the output's
    frames start at 0, so the sound moves by as much and keeps its offset to the picture (sound
    before the first frame is left out)."""

    def __init__(self, source: Any, out: Any, suffix: str, start: float = 0.0,
                 end: float | None = None, origin: float = 0.0) -> None:
        av = pyav()
        self.out = out
        self.stream_in = source.streams.audio[0]
        self.start = origin + start  # on the source's clock, where the output's time 0 lies
        self.end = None if end is None else origin + end
        name = self.stream_in.codec_context.name
        self.copy = name in AUDIO_KEPT[suffix]
        if self.copy:
            self.stream_out = out.add_stream_from_template(self.stream_in)
        else:
            self.stream_out = out.add_stream(AUDIO_KEPT[suffix][0], rate=self.stream_in.rate)
            self.resampler = av.AudioResampler(format=self.stream_out.codec_context.format.name,
                                               layout=self.stream_in.layout.name, rate=self.stream_in.rate)
        self._packets = self._made(source)
        self._pending: tuple[Any, float] | None = None

    def mux_until(self, seconds: float | None) -> None:
        """Mux the audio up to ``seconds`` of the output (None: all that is left)."""
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    return
            packet, when = self._pending
            if seconds is not None and when > seconds:
                return
            self.out.mux(packet)
            self._pending = None

    def _made(self, source: Any) -> Iterator[tuple[Any, float]]:
        shift = round(self.start / self.stream_in.time_base) if self.start else 0
        samples: int | None = None  # re-encoded sound moved in time is stamped afresh from its first packet
        if self.start > 0:
            source.seek(shift, stream=self.stream_in, backward=True)
        for packet in source.demux(self.stream_in):
            if packet.dts is None:
                continue
            when = _seconds(packet)
            if self.end is not None and when >= self.end:
                break
            if self.start and when < self.start:
                continue
            when -= self.start
            if samples is None:
                samples = round(when * self.stream_in.rate)
            if self.copy:
                packet.stream = self.stream_out
                if shift:
                    packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
                yield packet, when
                continue
            for frame in packet.decode():
                for converted in self.resampler.resample(frame):
                    if self.start:
                        converted.pts, samples = samples, samples + converted.samples
                    for encoded in self.stream_out.encode(converted):
                        yield encoded, when
        if not self.copy:
            for encoded in self.stream_out.encode(None):
                yield encoded, float("inf")

"""Video files in and out, through PyAV (its wheels bring FFmpeg).

Frames are decoded one at a time as 8-bit RGB and encoded the same way, so memory stays a
few frames whatever the length. The output is H.264 in MP4 (``.mp4``) or ProRes 422 HQ in
QuickTime (``.mov``), with the source's frame rate, colour description (primaries, transfer,
matrix, range), timecode and audio carried through: the audio stream is copied when the
output container holds its codec, else re-encoded (AAC in MP4, 16-bit PCM in MOV).

A file is written under a temporary name beside its destination and renamed only when
complete: a failure part-way leaves nothing behind. Problems with an input (not a video,
damaged, a variable frame rate, no frames, too long) raise :class:`VideoError` naming it.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from .timecode import frames_of, is_drop_frame, length_text, timecode_of
from .video_colour import LIMITED_RANGE, frame_rgb, matrix_of, range_of
from .x264_settings import x264_options

if TYPE_CHECKING:
    from .video_sound import AudioCarry, SamplesCarry

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".m4v"})
OUTPUT_SUFFIXES = {".mp4": "H.264 in MP4", ".mov": "ProRes 422 HQ in QuickTime"}
MAX_SECONDS = 2 * 3600  # longer inputs are refused: hours of frames through an effect is a batch job
VFR_TOLERANCE = 0.01  # average and nominal frame rates further apart than this: variable frame rate
VFR_PACKETS = 240  # frames whose spacing is checked
REORDER_DEPTH = 16  # frames a decoder may hold back (H.264 and HEVC allow at most 16)
VFR_JITTER = 0.25  # a step this far from the usual one (timestamps round to their time base)
COLOUR_FIELDS = ("color_primaries", "color_trc", "colorspace", "color_range")



class VideoError(ValueError):
    """An input video cannot be used, or an output cannot be written; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int  # as the container states it, or duration x rate
    seconds: float
    codec: str
    colour: dict[str, int]
    timecode: str | None
    audio: str | None  # the audio codec, None without sound
    # The file's bytes when it came in a request rather than from a path (``path`` then only names it).
    data: bytes | None = field(default=None, repr=False, compare=False)
    # Degrees counter-clockwise a player turns the frames by (a phone's portrait video): the
    # frames are read and processed as stored, and every video written from them says the same.
    rotation: int = 0
    # Seconds on the file's clock where the first frame is shown: the sound is laid under the
    # frames from this moment, so a video stream that starts after its sound keeps in sync.
    start: float = 0.0

    def open(self) -> Any:
        """The file opened for reading with PyAV (a context manager)."""
        return _open(self.path, self.data)


def _open(path: Path, data: bytes | None) -> Any:
    av = pyav()
    return av.open(io.BytesIO(data)) if data is not None else av.open(str(path))


def pyav() -> Any:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - a dependency; only a broken install lacks it
        raise VideoError(f"video needs PyAV: pip install av ({exc})") from exc
    return av


def probe(path: Path, max_seconds: float = MAX_SECONDS, data: bytes | None = None) -> VideoInfo:
    """What ``path`` holds (or ``data``, a file's bytes, ``path`` naming it), or VideoError
    saying why it cannot be used."""
    av = pyav()
    if (len(data) if data is not None else path.stat().st_size if path.is_file() else 1) == 0:
        raise VideoError(f"{path.name}: the file is empty (0 bytes), not a video")
    try:
        container = _open(path, data)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise VideoError(f"{path.name}: not a video this build of FFmpeg can read, or damaged "
                         f"({reason})") from None
    try:
        return _described(path, container, max_seconds, data)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path.name}: damaged ({exc})") from None
    finally:
        container.close()


def _described(path: Path, container: Any, max_seconds: float, data: bytes | None) -> VideoInfo:
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        raise VideoError(f"{path.name}: not a video but a still image ({container.format.name})")
    if not container.streams.video:
        raise VideoError(f"{path.name}: holds no video stream")
    stream = container.streams.video[0]
    context = stream.codec_context
    if context is None or not context.name:
        raise VideoError(f"{path.name}: its video codec is not one this build of FFmpeg decodes")
    fps = stream.average_rate or stream.guessed_rate
    if not fps:
        raise VideoError(f"{path.name}: states no frame rate")
    nominal = stream.base_rate or stream.guessed_rate or fps
    drifts = abs(float(fps) - float(nominal)) > VFR_TOLERANCE * float(nominal)
    gaps = None if drifts else _uneven(container, stream)
    if drifts or gaps is not None:
        # Said by what its frames do: the nominal rate alone may be one it never has.
        spacing = (f"{gaps[0] * 1000:.0f} to {gaps[1] * 1000:.0f} ms apart" if gaps is not None else
                   f"{float(fps):.3f} fps on average, {float(nominal):.3f} between its closest frames")
        raise VideoError(f"{path.name}: variable frame rate (its frames are not evenly spaced: {spacing}); "
                         "convert it to a constant rate first (ffmpeg -i in -fps_mode cfr out)")
    seconds = (float(stream.duration * stream.time_base) if stream.duration
               else container.duration / 1e6 if container.duration else 0.0)
    frames = int(stream.frames) or round(seconds * float(fps))
    if frames <= 0 or not context.width or not context.height:
        raise VideoError(f"{path.name}: holds no frames")
    if context.width < 2 or context.height < 2:
        raise VideoError(f"{path.name}: {context.width}x{context.height} pixels; a video must be at least "
                         "2x2 (H.264 and ProRes code pixels in pairs)")
    if seconds > max_seconds:
        raise VideoError(f"{path.name}: {length_text(seconds)} long; at most "
                         f"{length_text(max_seconds)} is taken here: split it first")
    timecode = stream.metadata.get("timecode") or container.metadata.get("timecode")
    audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    colour = {name: int(getattr(context, name, 0) or 0) for name in COLOUR_FIELDS}
    rotation, frame_matrix, frame_range = _first_look(container, stream)
    # The matrix and range every frame is read and written with, so an effect at strength 0 gives
    # the codes back (and the output says which it used).
    colour["colorspace"] = matrix_of(frame_matrix, colour["colorspace"], context.height)
    colour["color_range"] = range_of(frame_range, colour["color_range"])
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    return VideoInfo(path, context.width, context.height, Fraction(fps), frames, seconds, context.name,
                     colour, timecode, audio, data, rotation, start)


def _first_look(container: Any, stream: Any) -> tuple[int, int, int]:
    """The first frame's display rotation, matrix and range tags (0 when none, or it cannot be decoded)."""
    try:
        for frame in container.decode(stream):
            return (round(getattr(frame, "rotation", 0) or 0) % 360, int(frame.colorspace or 0),
                    int(frame.color_range or 0))
    except Exception:  # a damaged start is reported where the frames are read, naming the frame
        return 0, 0, 0
    finally:
        container.seek(0)
    return 0, 0, 0


def _read_with(info: VideoInfo) -> tuple[int, int]:
    """The matrix and colour range ``info``'s frames are read and written with."""
    return (matrix_of(0, info.colour.get("colorspace", 0), info.height),
            range_of(0, info.colour.get("color_range", 0)))


def _uneven(container: Any, stream: Any) -> tuple[float, float] | None:
    """The shortest and longest gap in seconds when the first frames' timestamps (up to
    VFR_PACKETS, read without decoding) are spaced unevenly, else None: some containers
    (Matroska, WebM) state a rate whatever the frames do."""
    stamps = []
    for packet in container.demux(stream):
        if packet.pts is not None:
            stamps.append(packet.pts)
        if len(stamps) >= VFR_PACKETS:
            break
    container.seek(0)
    ordered = np.sort(np.asarray(stamps, dtype=np.float64))
    if len(ordered) > REORDER_DEPTH + 3:
        # Packets come in decode order: with B-frames the window's last frames in display order
        # may still be ahead in the file, or past the end of a file cut short (which would read
        # as a variable rate, and be refused with the wrong advice). Their gaps say nothing of the rate.
        ordered = ordered[:-REORDER_DEPTH]
    if len(ordered) < 3:
        return None
    steps = np.diff(ordered)
    usual = float(np.median(steps))
    if usual <= 0 or not np.any(np.abs(steps - usual) > VFR_JITTER * usual):
        return None
    unit = float(stream.time_base)
    return float(steps.min()) * unit, float(steps.max()) * unit


def read_frames(info: VideoInfo, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Every frame as (height, width, 3) uint8 RGB, one at a time, in display order; scaled
    to ``size`` (width, height) by area averaging when given (FFmpeg's scaler, cheap)."""
    av = pyav()
    matrix, colour_range = _read_with(info)
    with info.open() as container:
        container.streams.video[0].thread_type = "AUTO"
        done = 0
        try:
            for frame in container.decode(video=0):
                yield frame_rgb(frame, matrix, colour_range, size)
                done += 1
        except av.error.FFmpegError as exc:
            raise VideoError(f"{info.path.name}: damaged after frame {done} ({exc})") from None
        if done == 0:
            raise VideoError(f"{info.path.name}: no frame could be decoded")
        if done < info.frames - 1:  # the container's count may round a duration; a frame short is no harm
            raise VideoError(f"{info.path.name}: damaged or cut short: {done} of its {info.frames} frames "
                             "could be decoded")


def read_range(info: VideoInfo, first: int, last: int) -> Generator[np.ndarray, None, None]:
    """Frames ``first`` to ``last`` (inclusive, counted from 0) as RGB, one at a time: decoding
    starts at the key frame before ``first``, so a range deep in a long file costs little more
    than its own frames. Every frame of the range must be there, in order."""
    av = pyav()
    expected = first
    matrix, colour_range = _read_with(info)
    with info.open() as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = stream.start_time or 0
        ticks = 1 / (info.fps * stream.time_base)  # one frame in the stream's time base
        try:
            if first > 0:
                container.seek(origin + int(first * ticks), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                number = round((frame.pts - origin) / ticks)
                if number < expected:
                    continue  # before the range: decoded only to reach it
                if number > expected:
                    break
                yield frame_rgb(frame, matrix, colour_range)
                expected += 1
                if expected > last:
                    return
        except av.error.FFmpegError as exc:
            raise VideoError(f"{info.path.name}: damaged at frame {expected} ({exc})") from None
    raise VideoError(f"{info.path.name}: damaged or cut short: frame {expected} could not be decoded")


def count_frames(info: VideoInfo) -> int:
    """The exact number of frames: as MP4 and QuickTime index them, else counted from the packets
    (read, not decoded: a few seconds for hours of video)."""
    with info.open() as container:
        stream = container.streams.video[0]
        if stream.frames and info.path.suffix.lower() in (".mp4", ".mov", ".m4v"):
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.pts is not None)


class VideoWriter:
    """Encodes RGB frames to ``path`` (.mp4 or .mov) at the source's rate (or ``rate``), colour and timecode,
    with the source's audio muxed in as the frames reach it (never more than a frame's worth
    of sound held). Use as a context manager; nothing is left at ``path`` unless it completes."""

    def __init__(self, path: Path, source: VideoInfo, rate: Fraction | None = None,
                 sound: np.ndarray | None = None) -> None:
        suffix = path.suffix.lower()
        if suffix not in OUTPUT_SUFFIXES:
            raise VideoError(f"{path.name}: videos are written as "
                             + " or ".join(f"{s} ({what})" for s, what in OUTPUT_SUFFIXES.items()))
        self.path, self.source, self.suffix = path, source, suffix
        self.fps = rate or source.fps  # another rate than the source's: frames were made in between
        self.sound = sound  # float32 (frames, channels) at SOUND_RATE, laid under instead of the source's
        self._partial = partial_path(path)
        self._container: Any = None
        self._stream: Any = None
        self._audio: AudioCarry | SamplesCarry | None = None
        self._sound: Any = None  # the source, opened for its audio
        self._matrix, self._range = _read_with(source)
        self.written = 0

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.finish()
        else:
            self.abort()

    def _open(self, height: int, width: int) -> None:
        av = pyav()
        self._container = av.open(str(self._partial), "w")
        if self.suffix == ".mp4":
            stream = self._container.add_stream("libx264", rate=self.fps, options=x264_options())
            stream.pix_fmt = "yuv420p"
            width, height = width - width % 2, height - height % 2  # 4:2:0 needs even sides
        else:
            stream = self._container.add_stream("prores_ks", rate=self.fps, options={"profile": "3"})
            stream.pix_fmt = "yuv422p10le"
            width -= width % 2
        stream.width, stream.height = width, height
        if self.source.rotation:
            stream.set_display_rotation(self.source.rotation)
        self._matrix, self._range = _read_with(self.source)
        if self.suffix == ".mov":
            self._range = LIMITED_RANGE  # ProRes codes are limited range: a full-range source is converted
        tags = {**self.source.colour, "colorspace": self._matrix, "color_range": self._range}
        for name, value in tags.items():
            if value:
                setattr(stream.codec_context, name, value)
        if self.source.timecode:  # QuickTime and MP4 carry it as a tmcd track
            stream.metadata["timecode"] = _timecode_at(self.source.timecode, self.source.fps, self.fps)
        self._stream = stream
        from .video_sound import AudioCarry, SamplesCarry  # the sound's module imports this one

        if self.sound is not None:
            self._audio = SamplesCarry(self.sound, self._container, self.suffix)
        elif self.source.audio:
            self._sound = self.source.open()
            self._audio = AudioCarry(self._sound, self._container, self.suffix, origin=self.source.start)

    def write(self, rgb: np.ndarray) -> None:
        av = pyav()
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise TypeError(f"frames are (height, width, 3) uint8 RGB, got {rgb.dtype} {rgb.shape}")
        if self._container is None:
            self._open(rgb.shape[0], rgb.shape[1])
        stream = self._stream
        rgb = rgb[:stream.height, :stream.width]
        if rgb.shape[:2] != (stream.height, stream.width):
            raise VideoError(f"{self.path.name}: frame {self.written} is {rgb.shape[1]}x{rgb.shape[0]}, "
                             f"the video {stream.width}x{stream.height}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format=stream.pix_fmt, dst_colorspace=self._matrix,
                               dst_color_range=self._range)
        frame.pts, frame.time_base = self.written, 1 / self.fps
        self._container.mux(stream.encode(frame))
        self.written += 1
        if self._audio is not None:
            self._audio.mux_until(float(self.written / self.fps))

    def finish(self) -> None:
        if self._container is None:
            self.abort()
            raise VideoError(f"{self.path.name}: no frames to write")
        try:
            self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.mux_until(None)
            self._container.close()
            self._container = None
            replace_durably(self._partial, self.path)
        finally:
            self.abort()

    def abort(self) -> None:
        for opened in (self._container, self._sound):
            if opened is not None:
                with contextlib.suppress(Exception):
                    opened.close()
        self._container = self._sound = None
        self._partial.unlink(missing_ok=True)


def _timecode_at(start: str, source: Fraction, rate: Fraction) -> str:
    """The source's start timecode counted at ``rate`` (frames made between), naming the same
    moment; drop-frame where the source's is and ``rate`` has it (89.91 fps has not)."""
    if rate == source:
        return start
    drop = is_drop_frame(start, source)
    frame = round(frames_of(start, source, drop) * rate / source)
    return timecode_of(frame, rate, drop and is_drop_frame(start, rate))


def partial_path(path: Path) -> Path:
    """Where a video is written until complete: hidden, beside it, with its suffix (FFmpeg picks the
    container by it)."""
    return path.with_name(f".{path.name}.partial{path.suffix.lower()}")


def replace_durably(partial: Path, path: Path) -> None:
    """Rename a finished file over ``path`` once its bytes, then the rename, are on disk: a job
    commits a part only after this, so a crash never leaves it a truncated file."""
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)

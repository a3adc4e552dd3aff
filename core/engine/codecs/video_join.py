"""Join a video's parts, each encoded on its own, into one file, with the source's sound.

A batch job over a video encodes each range of frames to its own small file (so a range is
the unit that is done, committed and, after a crash, redone). When every range is there,
their packets are copied one after the other into the output, nothing re-encoded: each part
starts on a key frame and shares its neighbours' settings, so the joined stream decodes as
one. The source's sound for the frames taken, its timecode (moved on to the first frame
taken) and the parts' colour description come along; the file appears at its path only
when complete and on disk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import timecode
from .video import OUTPUT_SUFFIXES, VideoError, VideoInfo, partial_path, pyav, replace_durably
from .video_sound import AudioCarry


def join_parts(parts: Sequence[Path], target: Path, source: VideoInfo, first: int, frames: int) -> None:
    """Write ``target`` from ``parts`` (in order), which together hold ``frames`` frames of ``source``
    starting at frame ``first``; VideoError naming the part when one is missing or short."""
    suffix = target.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise VideoError(f"{target.name}: videos are written as {' or '.join(OUTPUT_SUFFIXES)}")
    missing = next((p for p in parts if not p.is_file()), None)
    if missing is not None:
        raise VideoError(f"{target.name}: its part {missing.name} is missing (removed while the job ran?)")
    av = pyav()
    partial = partial_path(target)
    sound: Any = None
    try:
        with av.open(str(partial), "w") as out:
            with av.open(str(parts[0])) as head:
                video = out.add_stream_from_template(head.streams.video[0])
            video.codec_context.framerate = source.fps  # the muxer's timecode track counts at this rate
            if source.rotation:
                video.set_display_rotation(source.rotation)
            started = timecode.advanced(source.timecode, first, source.fps)
            if started:
                video.metadata["timecode"] = started
            carry = None
            if source.audio:
                sound = source.open()
                carry = AudioCarry(sound, out, suffix, float(first / source.fps),
                                   float((first + frames) / source.fps), origin=source.start)
            stamps = [_stamps(part) for part in parts]  # a few numbers per frame, read ahead
            delay = max(_delay(each) for each in stamps)
            written = 0
            for part, its in zip(parts, stamps, strict=True):
                written += _copy_part(part, its, out, video, written, delay, source.fps, carry)
            if carry is not None:
                carry.mux_until(None)
        if written != frames:
            raise VideoError(f"{target.name}: its parts hold {written} frames, {frames} were made")
        replace_durably(partial, target)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{target.name}: joining its parts failed ({exc})") from None
    finally:
        if sound is not None:
            with contextlib.suppress(Exception):
                sound.close()
        partial.unlink(missing_ok=True)


def _stamps(part: Path) -> list[int]:
    """The part's presentation stamps in decode order (its packets read, not decoded)."""
    with pyav().open(str(part)) as container:
        stream = container.streams.video[0]
        return [packet.pts for packet in container.demux(stream) if packet.dts is not None]


def _delay(stamps: list[int]) -> int:
    """How far decoding must run ahead of display: a part with B-frames decodes some frames before
    those they follow; a part too short for B-frames does not."""
    return max((shown - stamp for shown, stamp in zip(sorted(stamps), stamps, strict=True)), default=0)


def _copy_part(part: Path, stamps: list[int], out: Any, video: Any, before: int, delay: int, fps: Fraction,
               carry: AudioCarry | None) -> int:
    """Copy one part's packets after the ``before`` frames already written; how many it held.

    Decode stamps are given afresh, one ``delay`` behind the frames in display order, the same
    for every part: each part's encoder chose its own (none for a part of two frames), and a
    stream whose decode clock jumps at a join would look to players like a changing rate."""
    with pyav().open(str(part)) as container:
        stream = container.streams.video[0]
        ticks = 1 / (fps * stream.time_base)  # one frame in the part's time base
        if ticks.denominator != 1:
            raise VideoError(f"{part.name}: its time base {stream.time_base} does not count whole frames")
        shift = before * int(ticks)
        packets = (p for p in container.demux(stream) if p.dts is not None)
        for count, (packet, stamp) in enumerate(zip(packets, sorted(stamps), strict=True), 1):
            packet.pts += shift
            packet.dts = stamp - delay + shift
            packet.stream = video
            out.mux(packet)
            if carry is not None:
                carry.mux_until(float((before + count) / fps))
    return len(stamps)

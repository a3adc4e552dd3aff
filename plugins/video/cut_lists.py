"""An assembled cut as files an editor opens: OpenTimelineIO, a CMX 3600 EDL, FCPXML, and JSON.

The cut is what ``video.autocut`` yields as its media (``kind="video"``): its shots, each a
run of frames of one input video placed at a frame of the cut, and the soundtrack under it.
Sources are named by their file names (relink them in the editor if they were moved). The
rendered MP4 is made by the effect itself and carried here as bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from xml.etree import ElementTree

from museforge import provenance_json, timecode

from .autocut_plan import Picked
from .shot_lists import counted, frame_count_mode, rational_time, reel_name, time_range


@dataclass(frozen=True)
class Source:
    """An input video as the cut refers to it."""

    name: str
    fps: Fraction
    frames: int
    width: int
    height: int
    start_timecode: str | None
    sound: bool

    @property
    def drop_frame(self) -> bool:
        return timecode.is_drop_frame(self.start_timecode, self.fps)

    def timecode(self, frame: int) -> str:
        return counted(self.start_timecode, self.fps, frame)


@dataclass(frozen=True)
class Cut:
    name: str
    fps: Fraction
    frames: int
    width: int
    height: int
    sources: tuple[Source, ...]
    shots: tuple[Picked, ...]
    music: str | None  # the soundtrack's file name; None: the videos' own sound
    music_seconds: float
    beats: tuple[float, ...]  # seconds, when cut to music
    tempo: float | None
    beat_source: str | None  # "piece" (the file's tempo) or "tracked"
    rendered: bytes | None = field(default=None, repr=False)  # the MP4, when asked for

    @property
    def seconds(self) -> float:
        return float(self.frames / self.fps)

    @property
    def drop_frame(self) -> bool:
        """The record timecodes are drop-frame when the first video's are (the cut has its rate)."""
        return bool(self.sources) and self.sources[0].drop_frame and self.sources[0].fps == self.fps

    def record_timecode(self, frame: int) -> str:
        return timecode.timecode_of(frame, self.fps, self.drop_frame)


def encode_json(cut: Cut, provenance: Mapping[str, str]) -> bytes:
    document = {
        "name": cut.name, "fps": str(cut.fps), "frames": cut.frames, "seconds": round(cut.seconds, 4),
        "width": cut.width, "height": cut.height,
        "music": cut.music, "tempo": None if cut.tempo is None else round(cut.tempo, 3),
        "beat_source": cut.beat_source, "beats": [round(b, 4) for b in cut.beats],
        "sources": [{"name": s.name, "fps": str(s.fps), "frames": s.frames,
                     "start_timecode": s.start_timecode} for s in cut.sources],
        "shots": [{
            "source": cut.sources[p.video].name, "source_index": p.video, "source_in": p.start,
            "source_out": p.start + p.source_frames,
            "source_in_timecode": cut.sources[p.video].timecode(p.start),
            "record_in": p.record_start, "record_out": p.record_start + p.frames,
            "record_in_seconds": round(float(p.record_start / cut.fps), 4),
            "score": round(p.score, 4), "within_shot": p.within_shot,
        } for p in cut.shots],
        "museforge": json.loads(provenance_json(provenance)),
    }
    return (json.dumps(document, indent=1) + "\n").encode()


def encode_edl(cut: Cut, provenance: Mapping[str, str]) -> bytes:
    """CMX 3600: a video event per shot (source timecodes at its video's rate, record at the cut's),
    and the soundtrack as an audio event under the whole cut. Each timecode is drop-frame (";")
    when its video's own is; an FCM line before an event says when that changes from the last."""
    mode = frame_count_mode(cut.sources[cut.shots[0].video].drop_frame if cut.shots else cut.drop_frame)
    lines = [f"TITLE: {cut.name[:70]}", mode, ""]
    number = 0
    for shot in cut.shots:
        number += 1
        source = cut.sources[shot.video]
        if frame_count_mode(source.drop_frame) != mode:
            mode = frame_count_mode(source.drop_frame)
            lines.append(mode)
        lines.append(f"{number:03d}  {reel_name(source.name):<8} V     C        "
                     f"{source.timecode(shot.start)} {source.timecode(shot.start + shot.source_frames)} "
                     f"{cut.record_timecode(shot.record_start)} "
                     f"{cut.record_timecode(shot.record_start + shot.frames)}")
        lines += [f"* FROM CLIP NAME: {source.name}", ""]
    if cut.music is not None:
        number += 1
        if frame_count_mode(cut.drop_frame) != mode:
            lines.append(frame_count_mode(cut.drop_frame))
        end = cut.record_timecode(cut.frames)
        lines.append(f"{number:03d}  {reel_name(cut.music):<8} AA    C        "
                     f"{cut.record_timecode(0)} {end} {cut.record_timecode(0)} {end}")
        lines += [f"* FROM CLIP NAME: {cut.music}", ""]
    lines.append(f"* museforge: {provenance_json(provenance)}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _reference(name: str, frames: int, rate: float, origin: int = 0) -> dict[str, object]:
    return {"OTIO_SCHEMA": "ExternalReference.1", "metadata": {}, "name": name,
            "available_range": time_range(origin, frames, rate), "available_image_bounds": None,
            "target_url": name}


def _otio_clip(name: str, reference: dict[str, object], source_range: dict[str, object],
               metadata: dict[str, object]) -> dict[str, object]:
    return {"OTIO_SCHEMA": "Clip.2", "name": name, "effects": [], "markers": [], "enabled": True,
            "color": None, "active_media_reference_key": "DEFAULT_MEDIA",
            "media_references": {"DEFAULT_MEDIA": reference}, "metadata": {"museforge": metadata},
            "source_range": source_range}


def _track(name: str, kind: str, children: list[dict[str, object]],
           markers: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"OTIO_SCHEMA": "Track.1", "name": name, "kind": kind, "children": children, "effects": [],
            "markers": markers or [], "enabled": True, "color": None, "metadata": {}, "source_range": None}


def encode_otio(cut: Cut, provenance: Mapping[str, str]) -> bytes:
    """An OpenTimelineIO timeline: V1 the shots, A1 the soundtrack, a marker on every beat cut to."""
    clips = []
    for number, shot in enumerate(cut.shots, 1):
        source = cut.sources[shot.video]
        rate = float(source.fps)
        origin = timecode.frames_of(source.start_timecode, source.fps, drop_frame=True)  # as shot lists
        clips.append(_otio_clip(f"shot {number:03d}", _reference(source.name, source.frames, rate, origin),
                                time_range(origin + shot.start, shot.source_frames, rate),
                                {"score": round(shot.score, 4), "record_in": shot.record_start}))
    rate = float(cut.fps)
    cuts = {p.record_start for p in cut.shots}
    markers: list[dict[str, object]] = [
        {"OTIO_SCHEMA": "Marker.2", "name": "beat", "color": "GREEN", "comment": "", "metadata": {},
         "marked_range": time_range(round(b * rate), 0, rate)}
        for b in cut.beats if round(b * rate) in cuts]
    tracks = [_track("V1", "Video", clips, markers)]
    if cut.music is not None:
        music = _otio_clip(cut.music, _reference(cut.music, round(cut.music_seconds * rate), rate),
                           time_range(0, cut.frames, rate), {"soundtrack": True})
        tracks.append(_track("A1", "Audio", [music]))
    stack = {"OTIO_SCHEMA": "Stack.1", "name": "tracks", "children": tracks, "effects": [], "markers": [],
             "enabled": True, "color": None, "metadata": {}, "source_range": None}
    timeline = {"OTIO_SCHEMA": "Timeline.1", "name": cut.name, "global_start_time": rational_time(0, rate),
                "tracks": stack, "metadata": {"museforge": json.loads(provenance_json(provenance))}}
    return (json.dumps(timeline, indent=1) + "\n").encode()


def _seconds(value: Fraction) -> str:
    """An FCPXML time: a whole or rational number of seconds ("3s", "1001/24000s")."""
    value = Fraction(value)
    return f"{value.numerator}s" if value.denominator == 1 else f"{value.numerator}/{value.denominator}s"


def encode_fcpxml(cut: Cut, provenance: Mapping[str, str]) -> bytes:
    """Final Cut Pro XML 1.9: the sources as assets, the shots on the spine, the soundtrack a
    connected clip under the first."""
    root = ElementTree.Element("fcpxml", version="1.9")
    resources = ElementTree.SubElement(root, "resources")
    ElementTree.SubElement(resources, "format", id="r0", name="FFVideoFormatRateUndefined",
                           frameDuration=_seconds(1 / cut.fps), width=str(cut.width), height=str(cut.height))
    for index, source in enumerate(cut.sources):
        ElementTree.SubElement(resources, "format", id=f"f{index}", frameDuration=_seconds(1 / source.fps),
                               width=str(source.width), height=str(source.height))
        asset = ElementTree.SubElement(
            resources, "asset", id=f"a{index}", name=source.name, start="0s",
            duration=_seconds(source.frames / source.fps), hasVideo="1",
            hasAudio="1" if source.sound else "0", format=f"f{index}")
        ElementTree.SubElement(asset, "media-rep", kind="original-media", src=source.name)
    if cut.music is not None:
        music = ElementTree.SubElement(resources, "asset", id="m0", name=cut.music, start="0s",
                                       duration=_seconds(Fraction(round(cut.music_seconds * 1000), 1000)),
                                       hasAudio="1", audioSources="1", audioRate="48000")
        ElementTree.SubElement(music, "media-rep", kind="original-media", src=cut.music)
    library = ElementTree.SubElement(root, "library")
    event = ElementTree.SubElement(library, "event", name="museforge autocut")
    project = ElementTree.SubElement(event, "project", name=cut.name)
    length = _seconds(cut.frames / cut.fps)
    sequence = ElementTree.SubElement(project, "sequence", format="r0", duration=length, tcStart="0s",
                                      tcFormat="DF" if cut.drop_frame else "NDF", audioLayout="stereo",
                                      audioRate="48k")
    spine = ElementTree.SubElement(sequence, "spine")
    for number, shot in enumerate(cut.shots):
        source = cut.sources[shot.video]
        start = shot.start / source.fps
        clip = ElementTree.SubElement(spine, "asset-clip", ref=f"a{shot.video}", name=source.name,
                                      offset=_seconds(shot.record_start / cut.fps), start=_seconds(start),
                                      duration=_seconds(shot.frames / cut.fps), format=f"f{shot.video}",
                                      tcFormat="DF" if source.drop_frame else "NDF")
        if number == 0 and cut.music is not None:
            ElementTree.SubElement(clip, "asset-clip", ref="m0", lane="-1", name=cut.music,
                                   offset=_seconds(start), start="0s", duration=length, audioRole="music")
    ElementTree.indent(root)
    comment = f"<!-- museforge: {provenance_json(provenance).replace('--', '- -')} -->\n"
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n{comment}{body}\n'.encode()


def encode_mp4(cut: Cut, provenance: Mapping[str, str]) -> bytes:
    if cut.rendered is None:
        raise ValueError("the cut was not rendered (ask video.autocut for mp4)")
    return cut.rendered

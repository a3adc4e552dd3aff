"""The video plugin's output formats: each encodes what its effects yield (a shot list from
``video.shots``, a cut from ``video.autocut``) by the type of the media's data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from museforge import Encoder, Media

from . import cut_lists, shot_lists
from .cut_lists import Cut
from .shot_lists import ShotList

Write = Callable[[Any, Mapping[str, str]], bytes]


def _encoder(name: str, media_type: str, extension: str, writers: Mapping[type, Write]) -> Encoder:
    def encode(media: Media, provenance: Mapping[str, str]) -> bytes:
        write = writers.get(type(media.data))
        if write is None:
            kinds = " or ".join(t.__name__ for t in writers)
            raise TypeError(f"{name} encodes a {kinds}, got {type(media.data).__name__}")
        return write(media.data, provenance)

    return Encoder(name=name, modality="video", media_type=media_type, extension=extension, encode=encode)


VIDEO_ENCODERS: Sequence[Encoder] = (
    _encoder("json", "application/json", "json",
             {ShotList: shot_lists.encode_json, Cut: cut_lists.encode_json}),
    _encoder("edl", "text/plain", "edl", {ShotList: shot_lists.encode_edl, Cut: cut_lists.encode_edl}),
    _encoder("otio", "application/json", "otio",
             {ShotList: shot_lists.encode_otio, Cut: cut_lists.encode_otio}),
    _encoder("fcpxml", "application/xml", "fcpxml", {Cut: cut_lists.encode_fcpxml}),
    _encoder("mp4", "video/mp4", "mp4", {Cut: cut_lists.encode_mp4}),
)

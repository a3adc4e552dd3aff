"""``video.autocut``: a cut of a given length assembled from one or more videos, optionally to music.

Each video is read once at the analysis size: its shots found by the shot model, every frame
scored (motion, sharpness, exposure, loudness; see ``autocut_analysis``). The cut's shots
change every ``shot_seconds`` or, with a soundtrack among the inputs, on its beats (see
``beats``); the best moments fill them (see ``autocut_plan``). The result is an edit an editor
opens (OpenTimelineIO, CMX 3600 EDL, FCPXML, JSON) or the cut rendered as an MP4 over the
soundtrack (or over the videos' own sound, shot by shot). numpy and ONNX Runtime; no torch.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from museforge import (
    AUDIO_INPUT_FORMATS,
    VIDEO_INPUT_FORMATS,
    Clip,
    EditShot,
    Effect,
    GenerationContext,
    LimitExceeded,
    Media,
    ModelSource,
    Progress,
    Sound,
    render_edit,
)

from . import beats as beat_tracking
from .autocut_analysis import ClipAnalysis, analyse
from .autocut_plan import Picked, Weights, cut_points, pick
from .cut_lists import Cut, Source

MODELS = Path(__file__).parent / "models"
SHOT_MODEL = "video.shots"
SOUND_RATE = 48000
JOIN_FADE = 0.005  # seconds faded out and in where two shots' own sounds meet (no click)
MAX_VIDEOS = 16


class AutocutParams(BaseModel):
    """Parameters of video.autocut."""

    model_config = ConfigDict(extra="forbid")

    duration: float = Field(30.0, gt=0.0, le=600.0, description=(
        "Length of the cut in seconds; it is a whole number of frames at the first video's rate, "
        "the nearest."))
    shot_seconds: float = Field(2.5, ge=0.5, le=30.0, description=(
        "About how long each shot lasts. With a soundtrack, the whole number of beats nearest it."))
    motion: float = Field(0.4, ge=0.0, le=1.0, description="Weight of motion in a moment's score.")
    sharpness: float = Field(0.4, ge=0.0, le=1.0, description="Weight of sharpness (focus, no blur).")
    loudness: float = Field(0.2, ge=0.0, le=1.0, description=(
        "Weight of the videos' own sound level (ignored when none of them has sound)."))
    novelty: float = Field(0.3, ge=0.0, le=1.0, description=(
        "Weight of novelty: colours unlike the few seconds before (a new scene, something coming "
        "into view)."))
    variety: float = Field(0.5, ge=0.0, le=2.0, description=(
        "How much moments that look alike (their colours) are kept from the same cut."))
    threshold: float = Field(0.5, ge=0.05, le=0.95, description=(
        "The shot model's threshold, as for video.shots: a picked moment never crosses a shot "
        "boundary it finds."))


def _split(inputs: Sequence[Any]) -> tuple[list[Clip], list[Sound]]:
    return [i for i in inputs if isinstance(i, Clip)], [i for i in inputs if isinstance(i, Sound)]


def check(params: AutocutParams, inputs: Sequence[Any]) -> list[tuple[str, str]]:
    clips, sounds = _split(inputs)
    problems = []
    if not clips:
        problems.append(("inputs", "give at least one video (MP4, MOV, MKV or WebM) to cut from"))
    if len(clips) > MAX_VIDEOS:
        problems.append(("inputs", f"{len(clips)} videos; at most {MAX_VIDEOS}"))
    if len(sounds) > 1:
        problems.append(("inputs", f"{len(sounds)} audio files; give at most one, the soundtrack"))
    if sounds and sounds[0].seconds + 1e-6 < params.duration:
        problems.append(("parameters.duration", f"{params.duration:g} s is longer than the soundtrack "
                         f"{sounds[0].name} ({sounds[0].seconds:.2f} s)"))
    footage = sum(float(c.frame_count / c.fps) for c in clips)
    if clips and footage < params.duration:
        problems.append(("parameters.duration", f"{params.duration:g} s is longer than the videos "
                         f"({footage:.2f} s in all)"))
    return problems


def _clip_sound(clips: Sequence[Clip], picks: Sequence[Picked], fps: Any) -> np.ndarray | None:
    """The videos' own sound under each shot, joined with short fades; None when none has sound."""
    if not any(c.info.audio for c in clips):
        return None
    pieces = []
    fade = int(JOIN_FADE * SOUND_RATE)
    for shot in picks:
        clip = clips[shot.video]
        seconds = float(shot.frames / fps)
        sound = clip.audio(SOUND_RATE, 2, float(shot.start / clip.fps), seconds)
        if sound is None:
            sound = np.zeros((round(seconds * SOUND_RATE), 2), np.float32)
        ramp = np.linspace(0.0, 1.0, min(fade, len(sound) // 2), dtype=np.float32)[:, None]
        sound[:len(ramp)] *= ramp
        sound[len(sound) - len(ramp):] *= ramp[::-1]
        pieces.append(sound)
    return np.concatenate(pieces)


def _rendering(steps: Generator[int, None, bytes], total: int) -> Generator[Progress, None, bytes]:
    while True:
        try:
            done = next(steps)
        except StopIteration as finished:
            return finished.value
        if done % 10 == 0 or done == total:
            yield Progress(done, total, "rendering")


def apply(ctx: GenerationContext, params: AutocutParams, inputs: Sequence[Any],
          seed: int) -> Iterator[Progress | Media]:
    clips, sounds = _split(inputs)
    analyses: list[ClipAnalysis] = []
    for index, clip in enumerate(clips):
        for event in analyse(ctx, index, clip, params.threshold):
            if isinstance(event, ClipAnalysis):
                analyses.append(event)
            else:
                yield event
    fps = clips[0].fps
    total = max(1, round(params.duration * fps))
    music = sounds[0] if sounds else None
    beats = None
    if music is not None:
        yield Progress(0, 1, "finding the beats")
        listened = music.samples(beat_tracking.RATE, 1, 0.0, min(music.seconds, params.duration + 1.0))
        beats = beat_tracking.beats_of(listened[:, 0], music.tags)
    edges = cut_points(total, fps, params.shot_seconds, beats)
    weights = Weights(params.motion, params.sharpness, params.loudness, params.novelty, params.variety)
    try:
        picks = pick(analyses, edges, fps, weights)
    except ValueError as exc:  # the shots' gaps took footage the up-front check could not count
        footage = sum(a.frames for a in analyses) / float(fps)
        raise LimitExceeded(f"{params.duration:g} s is too long a cut for these videos ({footage:.2f} s "
                            f"in all: {exc}); ask for a shorter one", ("parameters.duration",)) from None
    rendered = None
    if ctx.format == "mp4":
        sound = (music.samples(SOUND_RATE, 2, 0.0, float(total / fps)) if music is not None
                 else _clip_sound(clips, picks, fps))
        shots = [EditShot(clips[p.video], p.start, p.frames) for p in picks]
        rendered = yield from _rendering(render_edit(shots, fps, sound), total)
    sources = tuple(Source(c.name, c.fps, a.frames, c.width, c.height, c.timecode, bool(c.info.audio))
                    for c, a in zip(clips, analyses, strict=True))
    beat_times = tuple(t for t in beats.times if t < total / fps) if beats is not None else ()
    width, height = clips[0].width, clips[0].height
    if round(clips[0].info.rotation / 90) % 2:  # a portrait video stored on its side: rendered upright
        width, height = height, width
    width, height = width - width % 2, height - height % 2
    cut = Cut(f"autocut of {', '.join(c.name for c in clips)}"[:120], fps, total, width, height,
              sources, tuple(picks), music.name if music else None,
              music.seconds if music else 0.0, beat_times, beats.tempo if beats else None,
              beats.source if beats else None, rendered)
    yield Media(kind="video", data=cut, index=0, metadata={
        "frames": str(total), "fps": str(fps), "shots": str(len(picks)),
        **({"tempo": f"{beats.tempo:.2f}", "beats": beats.source} if beats else {})})


EFFECT = Effect(
    name="video.autocut",
    modality="video",
    parameters=AutocutParams,
    apply=apply,
    formats=("otio", "edl", "fcpxml", "json", "mp4"),
    input_formats=VIDEO_INPUT_FORMATS + AUDIO_INPUT_FORMATS,
    models=(ModelSource(SHOT_MODEL, MODELS / "shots"),),
    description=("A cut of a given length from one or more videos: their best moments (motion, sharpness, "
                 "exposure, sound) in shots that never cross a cut, changing on the beat of a soundtrack "
                 "when one is given. OpenTimelineIO, CMX 3600 EDL, FCPXML, JSON, or rendered as MP4."),
    min_inputs=1,
    max_inputs=MAX_VIDEOS + 1,
    check=check,
    timeout=3600.0,
)

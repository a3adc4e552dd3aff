"""``video.shots``: the shots of a video, as timecodes with confidence (no torch).

The video is decoded a frame at a time at the analysis size; each frame becomes a short
feature vector (``shot_features``), and the trained temporal network (``video.shots``
ONNX model) reads windows of those vectors and gives every frame the probability that a
hard cut starts there and that it lies inside a gradual transition (dissolve, fade, wipe).
Memory is the feature vectors (56 bytes a frame) and a few small frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from museforge import (
    VIDEO_INPUT_FORMATS,
    Clip,
    Effect,
    GenerationContext,
    Media,
    ModelSource,
    Progress,
    Recipe,
)

from .shot_boundaries import boundaries
from .shot_features import ANALYSIS, NUM_FEATURES, FrameFeatures, small_frame
from .shot_lists import ShotList

MODELS = Path(__file__).parent / "models"
MODEL = "video.shots"
WINDOW = 4096  # frames the network reads at once
MARGIN = 32  # frames of context each side of a window (>= shot_net.RECEPTIVE_RADIUS, 18)
PROGRESS_EVERY = 50  # frames


class ShotsParams(BaseModel):
    """Parameters of video.shots."""

    threshold: float = Field(0.5, ge=0.05, le=0.95, description=(
        "How sure the model must be to report a boundary (0.5: its tuned balance). Lower finds "
        "more boundaries and more false ones (e.g. in fast camera moves); higher finds fewer."))


def probabilities(ctx: GenerationContext, features: np.ndarray) -> np.ndarray:
    """[T, 2] over the whole video, the network run in overlapping windows."""
    total = len(features)
    result = np.zeros((total, 2), np.float32)
    for start in range(0, total, WINDOW):
        low, high = max(0, start - MARGIN), min(total, start + WINDOW + MARGIN)
        out = np.asarray(ctx.infer(MODEL, {"features": features[None, low:high]})["boundary"])[0]
        stop = min(total, start + WINDOW)
        result[start:stop] = out[start - low:stop - low]
        ctx.check_cancelled()
    return result


def apply(ctx: GenerationContext, params: ShotsParams, inputs: Sequence[Clip],
          seed: int) -> Iterator[Progress | Media]:
    clip = inputs[0]
    stream = FrameFeatures()
    rows: list[np.ndarray] = []
    expected = clip.frame_count
    for frame in clip.frames(ANALYSIS):
        rows.append(stream.push(small_frame(frame)))
        if len(rows) % PROGRESS_EVERY == 0:
            ctx.check_cancelled()
            yield Progress(len(rows), max(expected, len(rows)), "reading frames")
    features = np.stack(rows) if rows else np.zeros((0, NUM_FEATURES), np.float32)
    yield Progress(len(rows), len(rows), "finding boundaries")
    found = boundaries(probabilities(ctx, features), params.threshold)
    shots = ShotList(clip.name, clip.fps, len(rows), clip.timecode, tuple(found))
    yield Media(kind="video", data=shots, index=0,
                metadata={"frames": str(len(rows)), "boundaries": str(len(found)),
                          "fps": str(clip.fps)})


EFFECT = Effect(
    name=MODEL,
    modality="video",
    parameters=ShotsParams,
    apply=apply,
    formats=("json", "edl", "otio"),
    input_formats=VIDEO_INPUT_FORMATS,
    models=(ModelSource(MODEL, MODELS / "shots"),),
    description=("Shot boundaries of a video (hard cuts and dissolves, fades and wipes) as timecodes "
                 "with confidence: JSON, a CMX 3600 EDL or an OpenTimelineIO timeline."),
    timeout=3600.0,
)
RECIPES = (Recipe(MODEL, "Shot boundary network trained on clips composed from real photographs "
                  "and film frames", "museforge.plugins.video.shots_recipe:build", MODELS / "shots"),)

"""What ``video.autocut`` knows of each input video: its shots, and how good every frame is.

One pass over the frames at the analysis size (as ``video.shots`` reads them) gives, per frame:
- motion: how much of the picture changed since the last frame (something happens);
- sharpness: the spread of the Laplacian on the 256 x 144 frame (in focus, not motion-blurred);
- exposure: 1 for a well-exposed picture, falling towards 0 for one nearly black, blown out
  or flat (a fade, a lens cap, a white flash);
- loudness: the sound's level over the frame (where the clip has sound);
- its colours, so that the cut's moments differ from one another (variety);
- novelty: how unlike its colours are to those of the few seconds before it (something new
  comes into view, a new scene begins).
The shot model finds the cuts and transitions, and the frames inside a transition are not
usable: a picked segment never straddles a cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from museforge import Clip, GenerationContext, Progress

from .shot_boundaries import boundaries
from .shot_features import ANALYSIS, FEATURES, NUM_FEATURES, FrameFeatures, colour_histogram, small_frame
from .shots import probabilities

LOUDNESS_RATE = 16000
NOVELTY_SECONDS = 5.0
TRANSITION_MARGIN = 2  # frames either side of a boundary left out too
PROGRESS_EVERY = 50
_GREY = np.array([0.299, 0.587, 0.114], np.float32)
_MOTION = FEATURES.index("diff")


@dataclass(frozen=True)
class ClipAnalysis:
    index: int  # the input's position among the videos
    clip: Clip
    motion: np.ndarray  # [T] float32
    sharpness: np.ndarray  # [T]
    exposure: np.ndarray  # [T] in [0, 1]
    loudness: np.ndarray  # [T] dB (a floor of -80 where there is no sound)
    novelty: np.ndarray  # [T] in [0, 1]
    colours: np.ndarray  # [T, 64] histograms (summing to 1)
    shot_of: np.ndarray  # [T] int: the shot each frame belongs to, -1 inside a transition

    @property
    def frames(self) -> int:
        return len(self.motion)


def sharpness(rgb: np.ndarray) -> float:
    """log of the Laplacian's variance on the analysis-size grey frame."""
    grey = (rgb.astype(np.float32) @ _GREY) / 255.0
    laplacian = grey[1:-1, 1:-1] * 4 - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(np.log(laplacian.var() + 1e-6))


def exposure(brightness: float, contrast: float) -> float:
    """1 for a usable picture; towards 0 when nearly black, blown out or without contrast."""
    dark = np.clip((brightness - 0.04) / 0.12, 0.0, 1.0)
    blown = np.clip((0.97 - brightness) / 0.12, 0.0, 1.0)
    flat = np.clip((contrast - 0.01) / 0.05, 0.0, 1.0)
    return float(dark * blown * flat)


def novelty(colours: np.ndarray, fps: float) -> np.ndarray:
    """Half the L1 distance of each frame's histogram from the mean of the NOVELTY_SECONDS before it."""
    if not len(colours):
        return np.zeros(0, np.float32)
    window = max(1, round(NOVELTY_SECONDS * fps))
    sums = np.concatenate([np.zeros((1, colours.shape[1])), np.cumsum(colours, axis=0, dtype=np.float64)])
    ends = np.arange(len(colours))
    begins = np.maximum(0, ends - window)
    counts = np.maximum(1, ends - begins)[:, None]
    before = np.where(ends[:, None] > 0, (sums[ends] - sums[begins]) / counts, colours[:1])
    return (0.5 * np.abs(colours - before).sum(axis=1)).astype(np.float32)


def loudness(clip: Clip, frames: int) -> np.ndarray:
    """dB of the clip's sound over each frame; -80 throughout for a silent clip."""
    sound = clip.audio(LOUDNESS_RATE, 1)
    floor = np.full(frames, -80.0, np.float32)
    if sound is None or not len(sound):
        return floor
    per_frame = LOUDNESS_RATE / float(clip.fps)
    edges = (np.arange(frames + 1) * per_frame).astype(np.int64)
    squares = np.concatenate([[0.0], np.cumsum(sound[:, 0].astype(np.float64) ** 2)])
    ends = np.minimum(edges, len(sound))
    counts = np.maximum(ends[1:] - ends[:-1], 1)
    mean = (squares[ends[1:]] - squares[ends[:-1]]) / counts
    return np.maximum(floor, 10 * np.log10(mean + 1e-12)).astype(np.float32)


def analyse(ctx: GenerationContext, index: int, clip: Clip, threshold: float = 0.5
            ) -> Iterator[Progress | ClipAnalysis]:
    """Progress while reading the clip's frames, then its analysis."""
    stream = FrameFeatures()
    rows: list[np.ndarray] = []
    sharp: list[float] = []
    colours: list[np.ndarray] = []
    expected = max(clip.frame_count, 1)
    for frame in clip.frames(ANALYSIS):
        small = small_frame(frame)
        rows.append(stream.push(small))
        sharp.append(sharpness(frame))
        colours.append(colour_histogram(small))
        if len(rows) % PROGRESS_EVERY == 0:
            ctx.check_cancelled()
            yield Progress(len(rows), max(expected, len(rows)), f"reading {clip.name}")
    features = np.stack(rows) if rows else np.zeros((0, NUM_FEATURES), np.float32)
    found = boundaries(probabilities(ctx, features), threshold)
    shot_of = np.zeros(len(rows), np.int64)
    for number, boundary in enumerate(found, 1):
        shot_of[boundary.frame:] = number
    for boundary in found:  # inside a transition, and a frame or two either side: not usable
        shot_of[max(0, boundary.start - TRANSITION_MARGIN):boundary.end + TRANSITION_MARGIN + 1] = -1
    bright, contrast = FEATURES.index("brightness"), FEATURES.index("contrast")
    histograms = np.stack(colours) if colours else np.zeros((0, 64), np.float32)
    yield ClipAnalysis(
        index, clip,
        motion=features[:, _MOTION].copy(),
        sharpness=np.asarray(sharp, np.float32),
        exposure=np.asarray([exposure(float(r[bright]), float(r[contrast])) for r in rows], np.float32),
        loudness=loudness(clip, len(rows)),
        novelty=novelty(histograms, float(clip.fps)),
        colours=histograms,
        shot_of=shot_of,
    )

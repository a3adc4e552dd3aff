"""Plan a cut: where its shots change (on the beat, with music), and which moments fill them.

The cut's length is a whole number of frames at the first video's rate, the target rounded
(so within half a frame of it). Its shots change every ``shot_seconds`` or so; with a
soundtrack, every whole number of beats nearest that, each change on the frame nearest its
beat (within half a frame).

Every frame of every video gets a score: the rank (0 to 1, over all the videos' frames) of its
motion, sharpness, novelty and loudness, weighted, times its exposure (a black, blown or flat
frame is worth nothing). A candidate for a shot of the cut is a run of that many frames of one
video; its worth is its frames' mean score, less a penalty when it must cross a cut of its video
(where the video's shots are shorter than the cut's, the cut inside would show, off the beat).
The moments are chosen in the order the videos hold them (the inputs' order, then time), apart
from one another, the sum of their worth the largest that order allows: dynamic programming
over every start, so the result is the best such cut, not a greedy guess, and the same for the
same inputs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from fractions import Fraction

import numpy as np

from .autocut_analysis import ClipAnalysis
from .beats import Beats

GAP_SECONDS = 0.5  # picked moments of one video stay this far apart
# A moment that crosses a cut of its video (its shots are shorter than the cut's) shows that cut
# too, off the beat: taken only when what stays inside one shot is far worse.
CROSS_PENALTY = 0.35


@dataclass(frozen=True)
class Weights:
    motion: float
    sharpness: float
    loudness: float
    novelty: float
    variety: float


@dataclass(frozen=True)
class Picked:
    """One shot of the cut: ``frames`` frames of the cut from ``source_frames`` frames of a video."""

    video: int  # which input video
    start: int  # its first frame there
    source_frames: int
    record_start: int  # where it starts in the cut
    frames: int
    score: float  # its frames' mean score, 0 to 1
    within_shot: bool  # False: the footage ran short and it crosses a cut of its video


def cut_points(total: int, fps: Fraction, shot_seconds: float, beats: Beats | None) -> list[int]:
    """The frames where the cut's shots start, 0 first, and ``total`` last."""
    rate = float(fps)
    if beats is None or len(beats.times) < 2:
        count = max(1, round(total / (shot_seconds * rate)))
        return [round(i * total / count) for i in range(count + 1)]
    every = max(1, round(shot_seconds / beats.period))
    shortest = max(1, math.ceil(0.5 * every * beats.period * rate))
    cuts: list[int] = []
    for t in beats.times[every::every] if beats.source == "piece" else beats.times[::every]:
        frame = round(t * rate)
        if frame - (cuts[-1] if cuts else 0) >= shortest and total - frame >= shortest:
            cuts.append(frame)
    return [0, *cuts, total]


def frame_scores(analyses: Sequence[ClipAnalysis], weights: Weights) -> list[np.ndarray]:
    """Every frame's score in [0, 1], per video, ranked over all of them."""
    def ranks(values: list[np.ndarray]) -> list[np.ndarray]:
        joined = np.concatenate(values)
        order = np.argsort(np.argsort(joined, kind="stable"), kind="stable").astype(np.float32)
        ranked = order / max(1, len(joined) - 1)
        return np.split(ranked, np.cumsum([len(v) for v in values])[:-1])

    loud = [a.loudness for a in analyses]
    heard = any(float(x.max()) > -79.0 for x in loud if len(x))
    parts = [(weights.motion, ranks([a.motion for a in analyses])),
             (weights.sharpness, ranks([a.sharpness for a in analyses])),
             (weights.novelty, ranks([a.novelty for a in analyses]))]
    if heard:
        parts.append((weights.loudness, ranks(loud)))
    total = sum(w for w, _ in parts) or 1.0
    return [sum(w * r[i] for w, r in parts) / total * a.exposure for i, a in enumerate(analyses)]


def _runs(values: np.ndarray) -> np.ndarray:
    """For each frame, how many frames from it on share its shot (0 inside a transition)."""
    length = np.zeros(len(values) + 1, np.int64)
    for t in range(len(values) - 1, -1, -1):
        if values[t] >= 0:
            length[t] = length[t + 1] + 1 if t + 1 < len(values) and values[t + 1] == values[t] else 1
    return length[:-1]


VARIETY_ROUNDS = 3
MAX_CELLS = 40_000_000  # slots x candidate starts the search keeps back-pointers for


@dataclass(frozen=True)
class _Timeline:
    """The videos end to end, one index over all their frames (a candidate never runs into the next)."""

    analyses: tuple[ClipAnalysis, ...]
    offsets: np.ndarray  # where each video starts
    score_sums: tuple[np.ndarray, ...]  # per video, cumulative frame scores
    runs: tuple[np.ndarray, ...]  # per video, frames left in the shot from each frame
    stride: int  # candidate starts every this many frames (1 unless the search would be too large)

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    def worth(self, length: int, fps: Fraction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For a shot of ``length`` cut frames: every start's worth (-inf where none fits), mean score,
        and the first start the next shot may take after it."""
        worth = np.full(self.size, -np.inf)
        means = np.zeros(self.size)
        reach = np.full(self.size, self.size + 1, np.int64)
        for analysis, offset, sums, run in zip(self.analyses, self.offsets, self.score_sums, self.runs,
                                               strict=False):
            frames = _source_frames(length, analysis.clip.fps, fps)
            starts = np.arange(0, analysis.frames - frames + 1, self.stride)
            if not len(starts):
                continue
            mean = (sums[starts + frames] - sums[starts]) / frames
            at = offset + starts
            means[at] = mean
            worth[at] = mean - CROSS_PENALTY * (run[starts] < frames)
            reach[at] = at + frames + round(GAP_SECONDS * float(analysis.clip.fps))
        return worth, means, reach


def pick(analyses: Sequence[ClipAnalysis], edges: Sequence[int], fps: Fraction,
         weights: Weights) -> list[Picked]:
    """A moment for every shot of the cut (between consecutive ``edges``), in the videos' order;
    ValueError when the videos hold too little footage.

    The order-keeping search cannot weigh how alike its picks are, so variety is sought in rounds:
    after each, every frame is held back by how much its colours resemble the moments picked, and
    the search runs again; the round whose cut has the best worth less the picks' mutual likeness
    is kept."""
    scores = frame_scores(analyses, weights)
    penalties = [np.zeros(a.frames) for a in analyses]
    best: tuple[float, list[Picked]] | None = None
    for _ in range(VARIETY_ROUNDS if weights.variety > 0 else 1):
        picks = _search(analyses, [s - p for s, p in zip(scores, penalties, strict=True)], edges, fps)
        picked = [_colours(analyses, p) for p in picks]
        alike = _mean_overlap(picked)
        value = float(np.mean([_mean_score(scores, analyses, p) for p in picks])) - weights.variety * alike
        if best is None or value > best[0]:
            best = (value, [dataclass_replace(p, score=_mean_score(scores, analyses, p)) for p in picks])
        penalties = [weights.variety * np.mean([np.minimum(a.colours, c).sum(axis=1) for c in picked], axis=0)
                     for a in analyses]
    assert best is not None
    return best[1]


def _colours(analyses: Sequence[ClipAnalysis], picked: Picked) -> np.ndarray:
    analysis = next(a for a in analyses if a.index == picked.video)
    return analysis.colours[picked.start:picked.start + picked.source_frames].mean(axis=0)


def _mean_score(scores: Sequence[np.ndarray], analyses: Sequence[ClipAnalysis], picked: Picked) -> float:
    at = next(i for i, a in enumerate(analyses) if a.index == picked.video)
    return float(scores[at][picked.start:picked.start + picked.source_frames].mean())


def _mean_overlap(colours: Sequence[np.ndarray]) -> float:
    """The mean histogram intersection over all pairs (0: nothing alike, 1: the same colours)."""
    pairs = list(itertools.combinations(colours, 2))
    return float(np.mean([np.minimum(a, b).sum() for a, b in pairs])) if pairs else 0.0


def _search(analyses: Sequence[ClipAnalysis], scores: Sequence[np.ndarray], edges: Sequence[int],
            fps: Fraction) -> list[Picked]:
    """The order-keeping moments whose summed worth is largest (dynamic programming over all starts)."""
    lengths = [b - a for a, b in itertools.pairwise(edges)]
    offsets = np.concatenate([[0], np.cumsum([a.frames for a in analyses])])
    stride = max(1, math.ceil(len(lengths) * int(offsets[-1]) / MAX_CELLS))
    timeline = _Timeline(tuple(analyses), offsets,
                         tuple(np.concatenate([[0.0], np.cumsum(s, dtype=np.float64)]) for s in scores),
                         tuple(_runs(a.shot_of) for a in analyses), stride)
    before = np.zeros(timeline.size)  # the best total of the earlier shots that leaves each start free
    backs: list[np.ndarray] = []
    total = np.zeros(timeline.size)
    means: list[np.ndarray] = []
    for number, length in enumerate(lengths):
        worth, mean, reach = timeline.worth(length, fps)
        total = worth + before
        means.append(mean)
        if number == len(lengths) - 1:
            break
        order = np.argsort(reach, kind="stable")
        running = np.maximum.accumulate(total[order])
        leader = np.maximum.accumulate(np.where(total[order] >= running, np.arange(len(order)), 0))
        allowed = np.searchsorted(reach[order], np.arange(timeline.size), side="right")
        before = np.where(allowed > 0, running[np.maximum(allowed - 1, 0)], -np.inf)
        backs.append(np.where(allowed > 0, order[leader[np.maximum(allowed - 1, 0)]], -1))
    end = int(np.argmax(total))
    if not np.isfinite(total[end]):
        raise ValueError("the videos hold too little footage for a cut this long")
    starts = [end]
    for back in reversed(backs):
        starts.append(int(back[starts[-1]]))
    starts.reverse()
    result = []
    for number, (at, record, length) in enumerate(zip(starts, edges, lengths, strict=False)):
        video = int(np.searchsorted(offsets, at, side="right") - 1)
        analysis, start = analyses[video], at - int(offsets[video])
        need = _source_frames(length, analysis.clip.fps, fps)
        result.append(Picked(analysis.index, start, need, record, length, float(means[number][at]),
                             bool(timeline.runs[video][start] >= need)))
    return result


def _source_frames(length: int, source: Fraction, fps: Fraction) -> int:
    """Frames of a video at rate ``source`` that a shot of ``length`` frames at ``fps`` shows."""
    return max(1, int((length - 1) * source / fps) + 1)

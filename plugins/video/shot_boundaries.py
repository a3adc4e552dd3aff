"""From the network's per-frame probabilities to shot boundaries (numpy; serving path)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PEAK_RADIUS = 2  # a cut is the most likely frame within this many of its neighbours
MIN_GRADUAL = 3  # frames; shorter runs are noise
GAP = 2  # runs of a gradual transition this close are one transition


@dataclass(frozen=True)
class Boundary:
    """A boundary between shots: ``start`` the first frame not wholly the old shot, ``end``
    the first frame wholly the new one (equal for a hard cut)."""

    kind: str  # "cut" or "gradual"
    start: int
    end: int
    confidence: float

    @property
    def frame(self) -> int:
        """The frame the boundary is placed at: a cut's, or a gradual transition's middle."""
        return (self.start + self.end) // 2


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True, runs at most GAP apart joined."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    runs: list[tuple[int, int]] = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if runs and start - runs[-1][1] <= GAP:
            runs[-1] = (runs[-1][0], int(stop))
        else:
            runs.append((int(start), int(stop)))
    return runs


def boundaries(probabilities: np.ndarray, threshold: float = 0.5) -> list[Boundary]:
    """Boundaries from [T, 2] probabilities (hard cut, inside a gradual transition), in order.

    ``threshold`` below 0.5 finds more (and more false) boundaries, above 0.5 fewer.
    """
    cut, gradual = probabilities[:, 0], probabilities[:, 1]
    found: list[Boundary] = []
    covered = np.zeros(len(cut), bool)
    for start, stop in _runs(gradual > threshold):
        if stop - start >= MIN_GRADUAL:
            found.append(Boundary("gradual", start, stop - 1, float(gradual[start:stop].mean())))
            covered[max(0, start - PEAK_RADIUS):stop + PEAK_RADIUS] = True
    padded = np.pad(cut, PEAK_RADIUS, constant_values=-1.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * PEAK_RADIUS + 1)
    peaks = (cut > threshold) & (cut >= windows.max(axis=1)) & ~covered
    last = -10
    for t in np.flatnonzero(peaks):
        if t - last > PEAK_RADIUS:  # equal neighbours: the first
            found.append(Boundary("cut", int(t), int(t), float(cut[t])))
            last = int(t)
    return sorted(found, key=lambda b: b.start)

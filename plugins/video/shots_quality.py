"""How well boundaries are found: F1 per kind of transition, matched with a frame tolerance.

A hard cut is found by a detection at most ``CUT_TOLERANCE`` frames from the first frame
of the new shot; a gradual transition by one inside it or at most ``GRADUAL_TOLERANCE``
frames either side. Each detection finds at most one transition (the nearest); one that
finds none is a false alarm of the kind it claimed. The same rules score the network and
any other detector (the bench runs PySceneDetect through them). numpy only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CUT_TOLERANCE = 1
GRADUAL_TOLERANCE = 3


@dataclass(frozen=True)
class Truth:
    """A boundary between shots as composed: ``start`` is the first frame that is not wholly the
    old shot, ``end`` the first frame wholly the new one (equal for a hard cut)."""

    kind: str  # "cut" or a gradual kind ("dissolve", "fade", "wipe")
    start: int
    end: int

    @property
    def gradual(self) -> bool:
        return self.kind != "cut"


@dataclass(frozen=True)
class Detection:
    frame: int
    gradual: bool  # what the detector claims; a cut-only detector claims cuts


@dataclass
class Counts:
    """True positives, misses and false alarms, hard cuts and gradual transitions apart."""

    found: dict[str, int] = field(default_factory=lambda: {"cut": 0, "gradual": 0})
    missed: dict[str, int] = field(default_factory=lambda: {"cut": 0, "gradual": 0})
    false: dict[str, int] = field(default_factory=lambda: {"cut": 0, "gradual": 0})

    def add(self, other: Counts) -> None:
        for mine, theirs in ((self.found, other.found), (self.missed, other.missed),
                             (self.false, other.false)):
            for key in mine:
                mine[key] += theirs[key]

    def f1(self, kind: str | None = None) -> float:
        """F1 of one kind ("cut", "gradual"), or of every boundary whatever its kind."""
        keys = ("cut", "gradual") if kind is None else (kind,)
        tp = sum(self.found[k] for k in keys)
        wrong = sum(self.missed[k] + self.false[k] for k in keys)
        return 2 * tp / (2 * tp + wrong) if tp + wrong else 1.0

    def precision(self, kind: str | None = None) -> float:
        keys = ("cut", "gradual") if kind is None else (kind,)
        tp = sum(self.found[k] for k in keys)
        return tp / (tp + sum(self.false[k] for k in keys)) if tp else 0.0

    def recall(self, kind: str | None = None) -> float:
        keys = ("cut", "gradual") if kind is None else (kind,)
        tp = sum(self.found[k] for k in keys)
        return tp / (tp + sum(self.missed[k] for k in keys)) if tp else 0.0


def _reach(truth: Truth) -> tuple[int, int]:
    if truth.gradual:
        return truth.start - GRADUAL_TOLERANCE, truth.end + GRADUAL_TOLERANCE
    return truth.start - CUT_TOLERANCE, truth.start + CUT_TOLERANCE


def count(truths: Sequence[Truth], detections: Iterable[Detection]) -> Counts:
    """Match one clip's detections to its transitions (nearest first) and count."""
    pending = sorted(detections, key=lambda d: d.frame)
    used = [False] * len(pending)
    counts = Counts()
    for truth in sorted(truths, key=lambda t: t.start):
        low, high = _reach(truth)
        centre = (truth.start + truth.end) / 2
        best = min((i for i, d in enumerate(pending) if not used[i] and low <= d.frame <= high),
                   key=lambda i: abs(pending[i].frame - centre), default=None)
        key = "gradual" if truth.gradual else "cut"
        if best is None:
            counts.missed[key] += 1
        else:
            used[best] = True
            counts.found[key] += 1
    for detection, taken in zip(pending, used, strict=True):
        if not taken:
            counts.false["gradual" if detection.gradual else "cut"] += 1
    return counts

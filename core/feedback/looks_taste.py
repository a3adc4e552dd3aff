"""Each user's liking for what artifacts look like, learnt from their own ratings.

ALS (recommender) shares taste between users through artifacts and their generator and
parameter tokens, but two faces of one preset have the same tokens: what tells them apart is
what they look like. So beside it, per user, a ridge regression of their signed weights on the
measures of the artifacts they met (looks.measures, standardised within each generator, with
one intercept per generator so that liking a generator is left to ALS) says how much they like
bright, contrasted, colourful ... artifacts; its prediction is added to their scores in the
scores' own spread. Ridge, not a free fit: with a few dozen ratings and no taste for looks at
all, the weights stay near zero and the scores near ALS's own.

Chosen on bench.raters' seed 1 (the strength and the ridge, of 1, 2, 4 and 10, 30), in two
worlds: raters with a taste for looks, and without one, where it must not cost much
(docs/feedback.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .interactions import Item
from .looks import MEASURES

STRENGTH = 2.0  # the prediction, in weights' units, times the spread of the user's ALS scores
RIDGE = 30.0


class LooksTaste:
    """The key's artifacts' standardised measures (zero where not described), fixed at fit time."""

    def __init__(self, items: Sequence[Item], looks: Mapping[str, np.ndarray]) -> None:
        """``looks``: sha256 -> the MEASURES of those items described so far (looks.measured)."""
        makers = sorted({item.generator for item in items if item.sha256 in looks and item.generator})
        self.raw = np.zeros((len(items) if makers else 0, len(MEASURES)))  # none when no looks at all
        self.maker = np.full(len(items), -1, np.int64)  # index into makers; -1: not described
        self.makers = len(makers)
        for row, item in enumerate(items):
            found = looks.get(item.sha256)
            if found is not None and item.generator:
                self.maker[row] = makers.index(item.generator)
                self.raw[row] = found
        self.described = int((self.maker >= 0).sum())
        self.x = self.raw.copy()
        for column in range(len(makers)):
            rows = self.maker == column
            mean, spread = self.x[rows].mean(axis=0), self.x[rows].std(axis=0)
            varies = spread > 0  # a measure all its artifacts share says nothing
            self.x[rows] = np.where(varies, (self.x[rows] - mean) / np.where(varies, spread, 1.0), 0.0)

    def known(self, items: Sequence[Item]) -> dict[str, np.ndarray]:
        """sha256 -> MEASURES of the described ``items`` (the fit's own, in its order): carried into
        the key's next fit, so nothing is rendered twice for it."""
        return {items[int(row)].sha256: self.raw[row] for row in np.flatnonzero(self.maker >= 0)}

    def liking(self, weights: Mapping[int, float]) -> np.ndarray | None:
        """Every artifact's predicted weight from its looks for a user with ``weights`` (column ->
        signed weight); None when none of their artifacts was described."""
        columns = np.array([c for c in weights if self.maker[c] >= 0], dtype=np.int64)
        if not len(columns):
            return None
        intercepts = np.zeros((len(columns), self.makers))
        intercepts[np.arange(len(columns)), self.maker[columns]] = 1.0
        a = np.hstack([self.x[columns], intercepts])
        y = np.array([weights[int(c)] for c in columns])
        solved = np.linalg.solve(a.T @ a + RIDGE * np.eye(a.shape[1]), a.T @ y)
        return self.x @ solved[:len(MEASURES)]  # the intercepts (liking a generator) left to ALS

    def added(self, scores: np.ndarray, weights: Mapping[int, float]) -> np.ndarray:
        """``scores`` with the user's liking for looks added, in the scores' own spread."""
        found = self.liking(weights) if self.described else None
        if found is None:
            return scores
        return (scores + STRENGTH * float(scores.std()) * (found - found.mean())).astype(scores.dtype)

"""What bench.recommend's figures share: NDCG@10, and which held-out likes count for a user."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from museforge.feedback.interactions import Interactions

K = 10


def ndcg(ranked: Sequence[str], relevant: set[str], k: int = K) -> float:
    gains = sum(1.0 / np.log2(i + 2) for i, sha in enumerate(ranked[:k]) if sha in relevant)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(relevant))))
    return gains / ideal if ideal else 0.0


def liked_later(test: Interactions, train: Interactions, user: str, seen: set[str]) -> set[str]:
    """What ``user`` liked in ``test`` that the training events named and they had not met: the
    only held-out likes a ranking of the training's artifacts can find."""
    return {s for s in test.liked(user) if s in train.items} - seen

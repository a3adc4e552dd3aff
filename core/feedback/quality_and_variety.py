"""Two terms beside the ALS scores: how well liked an artifact is by those who met it, and a fixed
per-user noise that lets artifacts scored nearly alike trade places.

- **Quality.** ALS learns what a user likes about an artifact's kind (its generator, its
  parameters, who else liked it), but an artifact's own quality, which everyone who meets it
  sees, only enters through its few ratings. The share of the users who met an artifact that
  liked it says that directly; shrunk toward the key's overall share by ``QUALITY_PRIOR``
  meetings, an artifact met twice is not taken at its word. Standardised, it is added to a
  user's scores at ``QUALITY_WEIGHT`` of their spread. A share of meetings and not a count of
  likes: an artifact many were shown is not better for it.
- **Variety.** Everyone whose taste is alike would get the same top 10, and a catalogue most of
  which nobody is ever offered. A user's artifacts are ranked by their scores plus noise of
  ``VARIETY`` times the scores' spread, so artifacts the model scores nearly alike trade places
  between users while a clear preference stands. An artifact's noise comes from the user's name
  and what names the artifact (its draw: one picture saved as PNG and WebP has one), the same
  at every call and every fit, whatever else the catalogue holds: a list does not shuffle on
  reload, nor when another user is forgotten.

Both chosen on bench.raters' seed 1 (hidden-truth NDCG@10 and coverage@10, each expected figure
over 40 runs of the test period) and reported on seed 0 (docs/feedback.md).
"""

from __future__ import annotations

import hashlib

import numpy as np

QUALITY_WEIGHT = 0.25
QUALITY_PRIOR = 5.0
VARIETY = 0.3


def spread(values: np.ndarray) -> float:
    """The standard deviation; 0 for no values (a key whose every event was deleted)."""
    return float(values.std()) if values.size else 0.0


def standardised(values: np.ndarray) -> np.ndarray:
    """Mean 0 and standard deviation 1 (all zeros when every value is the same, or none)."""
    if not spread(values):
        return np.zeros(values.shape, np.float32)
    return np.asarray((values - values.mean()) / spread(values), np.float32)


def liked_share(met: np.ndarray, liked: np.ndarray, prior: float = QUALITY_PRIOR) -> np.ndarray:
    """Each artifact's share of meetings that were likes, shrunk toward the overall share, standardised."""
    overall = float(liked.sum()) / max(float(met.sum()), 1.0)
    return standardised((liked + prior * overall) / (met + prior))


def with_quality(scores: np.ndarray, quality: np.ndarray) -> np.ndarray:
    return np.asarray(scores + QUALITY_WEIGHT * spread(scores) * quality, np.float32)


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def artifact_keys(names: list[str]) -> np.ndarray:
    """(N,) uint64 per artifact from what names it (its draw, or its sha256): worked out once a fit."""
    return np.array([_key(name) for name in names], np.uint64)


def user_noise(user: str, keys: np.ndarray) -> np.ndarray:
    """Standard normal draws, one per artifact key, fixed by the user and the artifact alone: the
    same at every call, in every fit, whatever else the catalogue holds and in whatever order
    (SplitMix64's finaliser on the two keys, fixed arithmetic rather than a library's stream)."""
    from scipy.special import ndtri

    seed = np.uint64(_key(user))
    with np.errstate(over="ignore"):  # the arithmetic is modulo 2**64 on purpose
        x = keys ^ seed
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    uniform = ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)  # (0, 1), never 0 or 1
    return np.asarray(ndtri(uniform))


def varied(scores: np.ndarray, user: str, keys: np.ndarray) -> np.ndarray:
    """``scores`` with the user's fixed noise added at ``VARIETY`` of their spread (``keys``: each
    column's ``artifact_keys``)."""
    return np.asarray(scores + VARIETY * spread(scores) * user_noise(user, keys), np.float32)

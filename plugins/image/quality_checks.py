"""Checks every image quality module makes of generated pictures before scoring them (numpy only)."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

# A little slack for float rounding; anything further means a wrong scale (0..255?).
SLACK = 1e-3


def check_pixels(label: str, images: np.ndarray) -> None:
    """Raise ValueError unless every value of ``images`` is finite and in [0, 1] (with ``SLACK``)."""
    if not np.isfinite(images).all():
        raise ValueError(f"{label} contains NaN or infinite values")
    if images.min() < -SLACK or images.max() > 1.0 + SLACK:
        raise ValueError(f"{label} values must lie in [0, 1], "
                         f"got [{float(images.min()):.3g}, {float(images.max()):.3g}]")


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """Mean L2 distance over all unordered pairs of rows of ``vectors`` (N, D)."""
    z = np.asarray(vectors, dtype=np.float64)
    d2 = (z * z).sum(1)[:, None] + (z * z).sum(1)[None, :] - 2.0 * z @ z.T
    return float(np.sqrt(np.maximum(d2[np.triu_indices(len(z), k=1)], 0.0)).mean())


def nearest_distances(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each image's L2 distance to its nearest image in ``reference`` (both flattened per image)."""
    fa = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    fb = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    d2 = (fa * fa).sum(1)[:, None] + (fb * fb).sum(1)[None, :] - 2.0 * fa @ fb.T
    return np.sqrt(np.maximum(d2, 0.0).min(axis=1))


def check_committed_judge(fit: Callable[[Path], object], committed: Path,
                          agreement: Callable[[Path, Path], float] | None = None,
                          least: float = 0.98) -> None:
    """Refit a judge into a scratch file and refuse unless it is the committed one.

    The same arrays pass; so does, when ``agreement`` is given, a judge whose verdicts agree with
    the committed one's on at least ``least`` of the held-out data (``agreement(fresh, committed)``):
    another CPU or library build computes the features a little differently, and the SVM then
    keeps other support vectors for the same boundary. A full export proves the committed judge
    is what its training split gives, without writing into the package (on a regular install
    that is site-packages).
    """
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "judge.npz"
        fit(fresh)
        with np.load(fresh) as new, np.load(committed) as old:
            same = set(new.files) == set(old.files) and all(np.array_equal(new[k], old[k]) for k in new.files)
        agreed = agreement(fresh, committed) if agreement is not None and not same else None
    if same:
        return
    if agreed is not None and agreed >= least:
        warnings.warn(f"the judge refitted here is not byte for byte {committed.name}, but agrees with it "
                      f"on {agreed:.1%} of the held-out data; the committed one stays", stacklevel=2)
        return
    found = "" if agreed is None else f" (their verdicts agree on {agreed:.1%} of the held-out data)"
    raise ValueError(f"{committed} is not the judge the training split gives{found}; rewrite it with the "
                     "quality module's fit_judge(training split)")

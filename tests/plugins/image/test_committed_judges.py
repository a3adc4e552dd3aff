"""A full export checks the committed judge against a refit instead of writing into the package."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from museforge.plugins.image.quality_checks import check_committed_judge


def _writer(weights: np.ndarray) -> Callable[[Path], None]:
    def fit(path: Path) -> None:
        np.savez_compressed(path, weights=weights, bias=np.float64(0.5))
    return fit


def test_an_identical_refit_passes_and_nothing_is_written(tmp_path: Path) -> None:
    committed = tmp_path / "judge.npz"
    np.savez_compressed(committed, weights=np.arange(6.0), bias=np.float64(0.5))
    before = committed.read_bytes()
    check_committed_judge(_writer(np.arange(6.0)), committed)
    assert committed.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["judge.npz"]


def test_a_different_refit_is_refused(tmp_path: Path) -> None:
    committed = tmp_path / "judge.npz"
    np.savez_compressed(committed, weights=np.arange(6.0), bias=np.float64(0.5))
    with pytest.raises(ValueError, match="not the judge the training split gives"):
        check_committed_judge(_writer(np.arange(6.0) + 1e-9), committed)


def test_a_refit_that_agrees_on_the_held_out_data_passes_with_a_warning(tmp_path: Path) -> None:
    committed = tmp_path / "judge.npz"
    np.savez_compressed(committed, weights=np.arange(6.0), bias=np.float64(0.5))
    seen: list[tuple[str, str]] = []

    def agreement(fresh: Path, old: Path) -> float:
        seen.append((fresh.name, old.name))
        return 0.99

    with pytest.warns(UserWarning, match="agrees with it on 99.0%"):
        check_committed_judge(_writer(np.arange(6.0) + 1e-9), committed, agreement)
    assert seen == [("judge.npz", "judge.npz")]
    with pytest.raises(ValueError, match=r"agree on 90.0% of the held-out data"):
        check_committed_judge(_writer(np.arange(6.0) + 1e-9), committed, lambda a, b: 0.9)

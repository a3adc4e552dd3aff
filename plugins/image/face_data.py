"""scikit-image's ``lfw_subset`` (Labeled Faces in the Wild) as a face / non-face split.

numpy, scikit-image and Pillow only (no torch), so the quality checks that score the
shipped ONNX model of ``image.faces`` can load exactly the hold-out split the GAN never saw.

``skimage.data.lfw_subset()`` holds 200 grayscale 25x25 crops: images 0-99 are
centred faces, 100-199 are non-faces (flat patches, edges, text, background, a few
off-centre fragments of faces), which we checked by looking at all 200.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from museforge.export.datasets import Fingerprint, TrainingData, installed_version, upscale_images

__all__ = ["FACES_SIZE", "FACES_TRAINING_DATA", "FaceSplit", "faces_split"]

# A power of two, so the generator can grow it from 4x4 by three doublings.
FACES_SIZE = 32
_RAW_SIZE = 25
_NUM_FACES = 100  # the first 100 images are faces, the last 100 non-faces


@dataclass(frozen=True)
class FaceSplit:
    """A deterministic split of faces and non-faces, each stratified by class."""

    train_faces: np.ndarray  # float32 (N, 32, 32) in [0, 1]; the GAN's only training data
    test_faces: np.ndarray  # held out: never seen by the GAN or the judge classifier
    train_nonfaces: np.ndarray  # negatives for the face/non-face judge
    test_nonfaces: np.ndarray
    fingerprint: str  # sha256 over raw data + split parameters, for manifests
    source: str


def _split_indices(n: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    n_test = max(1, round(n * test_fraction))
    # Sorted so the arrays keep the dataset's order: easier to compare by eye.
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def faces_split(test_fraction: float = 0.2, seed: int = 0) -> FaceSplit:
    """The 25x25 ``lfw_subset`` upscaled to 32x32, split per class into train and hold-out.

    The split depends only on ``test_fraction`` and ``seed``, so training and the
    quality checks agree on which images are held out.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    # Imported lazily: scikit-image is a training/quality extra, not a serving dependency.
    from skimage.data import lfw_subset

    raw = np.ascontiguousarray(lfw_subset(), dtype=np.float64)
    if raw.shape != (2 * _NUM_FACES, _RAW_SIZE, _RAW_SIZE):
        raise RuntimeError(f"unexpected lfw_subset shape {raw.shape}; has scikit-image changed it?")

    # repr() of the float round-trips exactly, so equal parameters hash equally.
    fingerprint = Fingerprint().add(raw, f"size={FACES_SIZE};test_fraction={test_fraction!r};seed={seed}")

    # Bicubic keeps eyes and mouth sharper than bilinear at this small 1.28x factor.
    images = upscale_images(raw, FACES_SIZE, Image.Resampling.BICUBIC)
    faces, nonfaces = images[:_NUM_FACES], images[_NUM_FACES:]
    rng = np.random.default_rng(seed)
    face_train, face_test = _split_indices(len(faces), test_fraction, rng)
    non_train, non_test = _split_indices(len(nonfaces), test_fraction, rng)
    return FaceSplit(
        train_faces=np.ascontiguousarray(faces[face_train]),
        test_faces=np.ascontiguousarray(faces[face_test]),
        train_nonfaces=np.ascontiguousarray(nonfaces[non_train]),
        test_nonfaces=np.ascontiguousarray(nonfaces[non_test]),
        fingerprint=fingerprint.hexdigest(),
        source=(
            f"scikit-image data.lfw_subset (Labeled Faces in the Wild), {_NUM_FACES} faces and "
            f"{len(raw) - _NUM_FACES} non-faces, {_RAW_SIZE}x{_RAW_SIZE} upscaled to "
            f"{FACES_SIZE}x{FACES_SIZE}"
        ),
    )


# What the recipes train on, and the terms it comes under (see docs/licences.md).
FACES_TRAINING_DATA = (
    TrainingData(
        name=('Labeled Faces in the Wild subset (skimage.data.lfw_subset): 100 faces + 100 non-faces, '
              '25x25'),
        licence='unverified',
        attribution=('Huang, G. B., Mattar, M., Lee, H., Learned-Miller, E. (2012), Learning to align '
                     'from scratch, NIPS; LFW, http://vis-www.cs.umass.edu/lfw/'),
        registry='pypi', package='scikit-image',
        version=installed_version('scikit-image')),
)

"""Quality metrics for generated faces: face-likeness, diversity, memorisation.

numpy, scikit-learn and scikit-image only (no torch), so tests can score the shipped
ONNX model with nothing but onnxruntime.

The judge is an RBF-SVC on HOG + coarse-intensity features, trained on the labelled
training split. ``lfw_subset``'s non-faces are mostly flat patches and edges, so a
judge trained on them alone learns "textured means face": it called 100 % of pure
noise and 100 % of upside-down faces "face". It is therefore also trained on hard
negatives made from the training split (noise, smooth blobs, heavily blurred,
upside-down and patch-shuffled faces), and the metrics report how it treats fresh
draws of each family, built from the *held-out* faces, next to its accuracy on real
held-out images. Positives are augmented (flips, shifts, gamma, brightness/contrast)
so that dark-skinned or low-contrast faces are not rejected for their exposure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from .face_data import FACES_SIZE, FaceSplit
from .faces import LATENT_DIM
from .quality_checks import check_pixels

__all__ = ["SAMPLES", "evaluate_faces", "evaluate_session", "generate_with_session"]

SAMPLES = 500  # generated faces the recipe's quality figures are computed on
EVAL_SEED = 20261123

_SIZE = FACES_SIZE
# HOG with 8x8-pixel cells (4x4 cells): eyes, nose and mouth each fill about one cell.
_HOG_CELL = 8
_HOG_BLOCK = 2
_HOG_ORIENTATIONS = 9
# Coarse intensity layout (8x8 means of 4x4 pixels): dark eyes below a bright forehead,
# which HOG's per-block normalisation alone barely sees.
_POOL = 4
_SVC_C = 1.0
_AUG_PER_FACE = 8  # augmented copies of each training face, besides it and its mirror
_NEGATIVES_PER_FAMILY = 80  # as many as there are real training non-faces
_SANITY_PER_FAMILY = 100
_TRAIN_SEED = 0
_SANITY_SEED = 123  # a different seed: sanity draws are never the training negatives

_Images = np.ndarray


class _Classifier(Protocol):
    def predict(self, x: np.ndarray) -> np.ndarray: ...


# The judge is a pure function of the split, and the fingerprint identifies the split.
_CLASSIFIERS: dict[str, _Classifier] = {}


def _features(images: _Images) -> np.ndarray:
    """(N, 32, 32) images -> HOG descriptor + contrast-normalised 8x8 intensity layout."""
    from skimage.feature import hog

    n = len(images)
    hogs = np.stack([
        hog(img, orientations=_HOG_ORIENTATIONS, pixels_per_cell=(_HOG_CELL, _HOG_CELL),
            cells_per_block=(_HOG_BLOCK, _HOG_BLOCK), block_norm="L2-Hys")
        for img in images
    ])
    side = _SIZE // _POOL
    pooled = images.reshape(n, side, _POOL, side, _POOL).mean(axis=(2, 4)).reshape(n, -1)
    # Per-image standardisation: layout, not exposure; +0.05 keeps flat patches from
    # being blown up into noise.
    pooled = (pooled - pooled.mean(axis=1, keepdims=True)) / (pooled.std(axis=1, keepdims=True) + 0.05)
    return np.concatenate([hogs, pooled], axis=1).astype(np.float64)


def _shift(image: _Images, dy: int, dx: int, pad: int = 2) -> _Images:
    padded = np.pad(image, pad, mode="edge")
    return padded[pad + dy : pad + dy + _SIZE, pad + dx : pad + dx + _SIZE]


def _augment_faces(faces: _Images, rng: np.random.Generator) -> _Images:
    """Each face, its mirror, and randomly flipped/shifted/exposed copies."""
    out: list[_Images] = []
    for face in faces:
        out += [face, face[:, ::-1]]
        for _ in range(_AUG_PER_FACE):
            img = face[:, ::-1] if rng.random() < 0.5 else face
            img = _shift(img, *(int(v) for v in rng.integers(-2, 3, size=2)))
            img = img ** np.exp(rng.uniform(-0.5, 0.5))
            mean = img.mean()
            img = (img - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-0.15, 0.15)
            out.append(np.clip(img, 0.0, 1.0))
    return np.stack(out)


def _noise(n: int, rng: np.random.Generator) -> _Images:
    """Gaussian or uniform pixel noise at random mean level and strength."""
    out = []
    for _ in range(n):
        mean, amp = rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.4)
        if rng.random() < 0.5:
            img = mean + amp * rng.standard_normal((_SIZE, _SIZE))
        else:
            img = mean + amp * 1.7 * rng.uniform(-1.0, 1.0, (_SIZE, _SIZE))  # same spread
        out.append(np.clip(img, 0.0, 1.0))
    return np.stack(out)


def _blobs(n: int, rng: np.random.Generator) -> _Images:
    """Smooth random fields: the blurry shapes a failing generator tends to draw."""
    from skimage.filters import gaussian

    out = []
    for _ in range(n):
        field = gaussian(rng.standard_normal((_SIZE, _SIZE)), sigma=rng.uniform(1.5, 6.0))
        lo, hi = np.sort(rng.uniform(0.0, 1.0, 2))
        span = field.max() - field.min()
        out.append(lo + (hi - lo) * (field - field.min()) / (span + 1e-9))
    return np.stack(out)


def _blurred(faces: _Images, rng: np.random.Generator) -> _Images:
    """Faces blurred until eyes and mouth are gone (sigma 2.5-4 px)."""
    from skimage.filters import gaussian

    return np.stack([gaussian(f, sigma=rng.uniform(2.5, 4.0)) for f in faces])


def _upside_down(faces: _Images, rng: np.random.Generator) -> _Images:
    return faces[:, ::-1, :].copy()


def _shuffled(faces: _Images, rng: np.random.Generator, tile: int = 8) -> _Images:
    """Faces cut into 8x8 tiles and reassembled at random: face texture, no face layout."""
    k = _SIZE // tile
    out = []
    for f in faces:
        tiles = f.reshape(k, tile, k, tile).transpose(0, 2, 1, 3).reshape(k * k, tile, tile)
        tiles = tiles[rng.permutation(k * k)]
        out.append(tiles.reshape(k, k, tile, tile).transpose(0, 2, 1, 3).reshape(_SIZE, _SIZE))
    return np.stack(out)


_FaceDerived = Callable[[_Images, np.random.Generator], _Images]
_DERIVED: dict[str, _FaceDerived] = {
    "blurred": _blurred, "upside_down": _upside_down, "shuffled": _shuffled,
}


def _hard_negatives(faces: _Images, n: int, rng: np.random.Generator) -> dict[str, _Images]:
    """``n`` images of each non-face family; the face-derived ones are built from ``faces``."""
    families = {"noise": _noise(n, rng), "blob": _blobs(n, rng)}
    for name, make in _DERIVED.items():
        families[name] = make(faces[rng.integers(0, len(faces), n)], rng)
    return families


def _classifier(split: FaceSplit) -> _Classifier:
    """The face/non-face judge for ``split``, trained on its training images only."""
    clf = _CLASSIFIERS.get(split.fingerprint)
    if clf is None:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        rng = np.random.default_rng(_TRAIN_SEED)
        positives = _augment_faces(split.train_faces.astype(np.float64), rng)
        hard = _hard_negatives(split.train_faces.astype(np.float64), _NEGATIVES_PER_FAMILY, rng)
        negatives = np.concatenate([split.train_nonfaces.astype(np.float64), *hard.values()])
        x = _features(np.concatenate([positives, negatives]))
        y = np.r_[np.ones(len(positives), np.int64), np.zeros(len(negatives), np.int64)]
        # SVC without probability=True is deterministic; "balanced" offsets the 3:2
        # negative:positive ratio so neither class wins by count.
        svc = SVC(C=_SVC_C, gamma="scale", class_weight="balanced", random_state=_TRAIN_SEED)
        pipeline = make_pipeline(StandardScaler(), svc)
        pipeline.fit(x, y)
        _CLASSIFIERS[split.fingerprint] = clf = pipeline
    return clf


def _face_fraction(clf: _Classifier, images: _Images) -> float:
    return float(np.mean(clf.predict(_features(images)) == 1))


def _as_images(images: np.ndarray) -> _Images:
    """Validate generated images, accepting the ONNX (N, 1, 32, 32) layout too."""
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or arr.shape[1:] != (_SIZE, _SIZE):
        raise ValueError(f"generated must have shape (N, {_SIZE}, {_SIZE}), got {np.shape(images)}")
    if len(arr) < 2:
        raise ValueError(f"generated needs at least 2 images (diversity is over pairs), got {len(arr)}")
    check_pixels("generated", arr)
    return np.clip(arr, 0.0, 1.0)


def _sq_distances(a: _Images, b: _Images) -> np.ndarray:
    """(len(a), len(b)) squared L2 distances between flattened images."""
    fa = a.reshape(len(a), -1)
    fb = b.reshape(len(b), -1)
    d2 = (fa * fa).sum(1)[:, None] + (fb * fb).sum(1)[None, :] - 2.0 * fa @ fb.T
    return np.maximum(d2, 0.0)  # clip the tiny negatives that rounding produces


def _mean_pairwise_distance(images: _Images) -> float:
    upper = np.triu_indices(len(images), k=1)
    return float(np.sqrt(_sq_distances(images, images)[upper]).mean())


def _kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel of KID (Binkowski et al. 2018).

    Unbiased, so small samples (20 held-out faces) give no offset, only noise.
    """
    dim = a.shape[1]

    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray((x @ y.T / dim + 1.0) ** 3)

    def within(x: np.ndarray) -> float:
        k = kernel(x, x)
        return float((k.sum() - np.trace(k)) / (len(x) * (len(x) - 1)))

    return within(a) + within(b) - 2.0 * float(kernel(a, b).mean())


def _standardise(images: _Images) -> _Images:
    """Zero mean, unit spread per image: what is left is layout, not exposure."""
    mean = images.mean(axis=(1, 2), keepdims=True)
    return (images - mean) / (images.std(axis=(1, 2), keepdims=True) + 1e-3)


def _two_nearest(images: _Images, train: _Images) -> tuple[np.ndarray, np.ndarray]:
    """L2 distances of each image to its nearest and second-nearest training face.

    A face and its mirror count as one face at the nearer of the two distances:
    the GAN trained on both, and a mirror must not be the "second nearest" of a copy.
    """
    d2 = np.minimum(_sq_distances(images, train), _sq_distances(images, train[:, :, ::-1]))
    two = np.sqrt(np.sort(d2, axis=1)[:, :2])
    # The floor keeps an exact copy of a face that has an exact duplicate finite.
    return two[:, 0], np.maximum(two[:, 1], 1e-12)


def evaluate_faces(generated: np.ndarray, split: FaceSplit) -> dict[str, float]:
    """Score generated faces (N, 32, 32) or (N, 1, 32, 32) in [0, 1] against ``split``.

    - ``classifier_holdout_accuracy``: the judge on the held-out faces and non-faces;
      ``holdout_face_fraction`` / ``holdout_nonface_fraction``: the fraction of each
      it calls "face" (the first is the ceiling to read ``generated_face_fraction`` against).
    - ``generated_face_fraction``: generated images the judge calls faces.
    - ``sanity_<family>_face_fraction`` for noise, blob, blurred, upside_down and
      shuffled: fresh draws the judge should reject (the face-derived ones are made
      from held-out faces); near 0 means the judge is not saying "face" to anything.
    - ``diversity_ratio``: mean pairwise L2 distance among generated images over the
      same among held-out faces (1 = as varied as real faces; near 0 = collapse).
      Plain L2 is dominated by exposure, so ``structure_diversity_ratio`` repeats it on
      per-image standardised images: one face drawn at many exposures scores low there.
    - ``feature_kid``: kernel inception distance, with the judge's HOG + layout
      features standing in for Inception, between generated and held-out faces; the
      face fraction saturates early in training (blotchy face-shaped blobs pass), this
      keeps falling as faces sharpen. ``feature_kid_real``: the same for the real
      training faces, the floor to compare it with.
    - ``nearest_train_distance_ratio``: mean L2 distance of generated images to their
      nearest training face (or its mirror, as the GAN saw both) over the same for
      held-out faces. Smooth, average-looking images also score low here (the mean
      face is close to every face), so read it with ``memorisation_ratio``: the mean
      ratio of the distance to the nearest training face over that to the second
      nearest (a face and its mirror count as one), generated over held-out. Real
      unseen faces sit about equally far from their two nearest (ratio ~0.97), a
      copy of a training face does not (noisy copies score ~0.13 relative), so about
      1 is healthy and well below 1 means memorised faces. ``copy_fraction``:
      generated images whose ratio is below every held-out face's.
    """
    images = _as_images(generated)
    test_faces = split.test_faces.astype(np.float64)
    metrics = _judge_figures(_classifier(split), images, test_faces, split.test_nonfaces.astype(np.float64))
    metrics["diversity_ratio"] = _mean_pairwise_distance(images) / _mean_pairwise_distance(test_faces)
    metrics["structure_diversity_ratio"] = (
        _mean_pairwise_distance(_standardise(images)) / _mean_pairwise_distance(_standardise(test_faces))
    )
    return {**metrics, **_closeness_figures(images, split.train_faces.astype(np.float64), test_faces)}


def _judge_figures(clf: _Classifier, images: _Images, test_faces: _Images,
                   test_nonfaces: _Images) -> dict[str, float]:
    """The judge on held-out faces and non-faces, on the generated images and on sanity draws."""
    face_hits = clf.predict(_features(test_faces)) == 1
    nonface_hits = clf.predict(_features(test_nonfaces)) == 1
    metrics: dict[str, float] = {
        "classifier_holdout_accuracy": float(
            (face_hits.sum() + (~nonface_hits).sum()) / (len(face_hits) + len(nonface_hits))
        ),
        "holdout_face_fraction": float(face_hits.mean()),
        "holdout_nonface_fraction": float(nonface_hits.mean()),
        "generated_face_fraction": _face_fraction(clf, images),
    }
    sanity = _hard_negatives(test_faces, _SANITY_PER_FAMILY, np.random.default_rng(_SANITY_SEED))
    for name, family in sanity.items():
        metrics[f"sanity_{name}_face_fraction"] = _face_fraction(clf, family)
    return metrics


def _closeness_figures(images: _Images, train: _Images, test_faces: _Images) -> dict[str, float]:
    """Feature KID against held-out faces, and distances to the training faces (memorisation)."""
    metrics: dict[str, float] = {}
    train_features = _features(train)
    center, scale = train_features.mean(axis=0), train_features.std(axis=0) + 1e-6
    test_features = (_features(test_faces) - center) / scale
    metrics["feature_kid"] = _kid((_features(images) - center) / scale, test_features)
    metrics["feature_kid_real"] = _kid((train_features - center) / scale, test_features)

    gen_d1, gen_d2 = _two_nearest(images, train)
    real_d1, real_d2 = _two_nearest(test_faces, train)
    metrics["nearest_train_distance_ratio"] = float(gen_d1.mean() / real_d1.mean())
    gen_ratio, real_ratio = gen_d1 / gen_d2, real_d1 / real_d2
    metrics["memorisation_ratio"] = float(gen_ratio.mean() / real_ratio.mean())
    metrics["copy_fraction"] = float(np.mean(gen_ratio < real_ratio.min()))
    return metrics


def generate_with_session(session: Any, count: int, seed: int) -> np.ndarray:
    """``count`` faces from an ONNX session, sampled exactly as the server samples."""
    z = np.random.default_rng(seed).standard_normal((count, LATENT_DIM)).astype(np.float32)
    return np.asarray(session.run(["image"], {"z": z})[0])[:, 0]


def evaluate_session(session: Any, split: FaceSplit, count: int = SAMPLES) -> dict[str, Any]:
    """The figures of the ONNX generator on ``count`` faces (what the recipe records)."""
    return {**evaluate_faces(generate_with_session(session, count, EVAL_SEED), split), "samples": count}

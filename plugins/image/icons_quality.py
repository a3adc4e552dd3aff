"""Quality figures of generated icons against held-out real emoji (numpy, scikit-image; no torch).

- **Category**: a judge (multinomial logistic regression on HOG of the shape and of the
  shading, a 16x16 coverage map and an 8x8 colour thumbnail) fitted on the real training split
  by ``fit_judge`` at export and committed as arrays in ``data/icons_judge.npz``;
  ``judge_holdout_accuracy`` is its accuracy on held-out real icons, ``category_accuracy`` the
  share of generated icons it labels with the category asked for, and
  ``category_accuracy_relative`` the one over the other (target >= 0.8).
- **Diversity**: mean pairwise distance in the judge's standardised feature space, generated over
  held-out real, per category (averaged); **not copies**: median distance (premultiplied RGBA) to
  the nearest training icon, generated over held-out real.
- **Alpha**: the share of semi-transparent pixels (alpha strictly between 0 and 1 at 8 bits),
  generated (as served, ``clean_alpha`` on) over real (``alpha_soft_ratio``): a blurred
  silhouette has far more; ``alpha_soft_ratio_model`` is the model's own alpha, unsnapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .icons import CATEGORIES, ICON, LATENT_DIM, categories_for, snap_alpha
from .icons_data import DATA_DIR, IconSet, icons_held_out, icons_train_fixture
from .quality_checks import check_pixels, mean_pairwise_distance, nearest_distances

__all__ = ["EVAL_PER_CATEGORY", "JUDGE_FILE", "IconsJudge", "evaluate", "evaluate_session", "features",
           "fit_judge", "generate_with_session", "load_judge", "soft_alpha_share"]

JUDGE_FILE = DATA_DIR / "icons_judge.npz"
EVAL_PER_CATEGORY = 64
EVAL_SEED = 20261203
_C = 0.1  # logistic regression's inverse regularisation, picked on the training split's folds


def features(icons: np.ndarray) -> np.ndarray:
    """Straight RGBA (N, 64, 64, 4) in [0, 1] -> (N, 1096) shape, shading, coverage and colour features."""
    from skimage.feature import hog

    x = np.asarray(icons, dtype=np.float64)
    alpha = x[..., 3]
    colour = x[..., :3] * alpha[..., None]
    grey = colour.mean(axis=3) + 0.5 * (1.0 - alpha)  # over mid-grey, so white and black shapes both show

    def hogs(planes: np.ndarray) -> np.ndarray:
        return np.stack([hog(p, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2))
                         for p in planes])

    n = len(x)
    coverage = alpha.reshape(n, 16, 4, 16, 4).mean(axis=(2, 4)).reshape(n, -1)
    thumbnail = colour.reshape(n, 8, 8, 8, 8, 3).mean(axis=(2, 4)).reshape(n, -1)
    return np.concatenate([hogs(grey), hogs(alpha), coverage, thumbnail], axis=1)


@dataclass(frozen=True)
class IconsJudge:
    """Standardisation and a multinomial logistic regression, as arrays."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (categories, features)
    intercept: np.ndarray

    def standardise(self, icons: np.ndarray) -> np.ndarray:
        return (features(icons) - self.mean) / self.scale

    def categories(self, icons: np.ndarray) -> np.ndarray:
        return np.asarray(np.argmax(self.standardise(icons) @ self.coef.T + self.intercept, axis=1))


def fit_judge(train: IconSet, path: Path = JUDGE_FILE) -> IconsJudge:
    """Fit the category judge on real training icons and write it to ``path`` (at export, full split)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    raw = features(train.unit())
    scaler = StandardScaler().fit(raw)
    model = LogisticRegression(C=_C, max_iter=5000).fit(scaler.transform(raw), train.category)
    np.savez_compressed(path, mean=scaler.mean_, scale=scaler.scale_, coef=model.coef_.astype(np.float32),
                        intercept=model.intercept_)
    judge = load_judge(path)
    check = train.unit()[:200]
    if not np.array_equal(judge.categories(check), model.predict(scaler.transform(features(check)))):
        raise RuntimeError("the array form of the judge disagrees with scikit-learn's")
    return judge


def load_judge(path: Path = JUDGE_FILE) -> IconsJudge:
    with np.load(path) as npz:
        return IconsJudge(mean=npz["mean"], scale=npz["scale"], coef=npz["coef"].astype(np.float64),
                          intercept=npz["intercept"])


def soft_alpha_share(icons: np.ndarray) -> float:
    """Share of pixels whose 8-bit alpha is neither 0 nor 255."""
    alpha = np.rint(np.asarray(icons)[..., 3] * 255.0)
    return float(np.mean((alpha > 0) & (alpha < 255)))


def _premultiplied(icons: np.ndarray) -> np.ndarray:
    x = np.asarray(icons, dtype=np.float64)
    return np.concatenate([x[..., :3] * x[..., 3:], x[..., 3:]], axis=-1).reshape(len(x), -1)


def _nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return nearest_distances(_premultiplied(a), _premultiplied(b))


def evaluate(icons: np.ndarray, category: np.ndarray, full_train: IconSet | None = None) -> dict[str, float]:
    """Figures of generated icons (straight RGBA float (N, 64, 64, 4) in [0, 1], categories asked for)."""
    icons = np.asarray(icons, dtype=np.float32)
    if icons.ndim != 4 or icons.shape[1:] != (ICON, ICON, 4):
        raise ValueError(f"generated icons must have shape (N, {ICON}, {ICON}, 4), got {icons.shape}")
    check_pixels("generated icons", icons)
    held, judge = icons_held_out(), load_judge()
    real = held.unit()
    z_real, z_gen = judge.standardise(real), judge.standardise(icons)
    judged = np.argmax(z_gen @ judge.coef.T + judge.intercept, axis=1)
    holdout = float(np.mean(np.argmax(z_real @ judge.coef.T + judge.intercept, axis=1) == held.category))
    accuracy = float(np.mean(judged == category))
    spread = mean_pairwise_distance
    ratios = [spread(z_gen[category == c]) / spread(z_real[held.category == c])
              for c in range(len(CATEGORIES)) if (category == c).sum() >= 2]
    train = icons_train_fixture().unit()
    figures = {
        "judge_holdout_accuracy": holdout,
        "category_accuracy": accuracy,
        "category_accuracy_relative": accuracy / holdout,
        **{f"category_accuracy_{name}": float(np.mean(judged[category == c] == c))
           for c, name in enumerate(CATEGORIES) if (category == c).any()},
        "diversity_ratio": float(np.mean(ratios)),
        "copy_ratio": float(np.median(_nearest(icons, train)) / np.median(_nearest(real, train))),
        "alpha_soft_share": soft_alpha_share(icons),
        "alpha_soft_share_real": soft_alpha_share(real),
        "alpha_soft_ratio": soft_alpha_share(icons) / soft_alpha_share(real),
    }
    if full_train is not None:
        whole = full_train.unit()
        honest = np.median(_nearest(real, whole))
        figures["copy_ratio_full"] = float(np.median(_nearest(icons, whole)) / honest)
    return figures


def generate_with_session(session: Any, per_category: int, seed: int = EVAL_SEED,
                          clean_alpha: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``per_category`` icons of every category, sampled exactly as the server does (straight RGBA)."""
    icons, wanted = [], []
    for c, name in enumerate(CATEGORIES):
        z = np.random.default_rng(seed + c).standard_normal((per_category, LATENT_DIM)).astype(np.float32)
        out = session.run(["image"], {"z": z, "category": categories_for(seed + c, per_category, name)})[0]
        rgba = np.clip(np.transpose(out, (0, 2, 3, 1)), 0.0, 1.0)
        icons.append(snap_alpha(rgba) if clean_alpha else rgba)
        wanted += [c] * per_category
    return np.concatenate(icons), np.array(wanted)


def evaluate_session(session: Any, per_category: int = EVAL_PER_CATEGORY,
                     full_train: IconSet | None = None) -> dict[str, Any]:
    """The figures the recipe records and the tests recompute from the shipped ONNX."""
    icons, wanted = generate_with_session(session, per_category)
    figures = evaluate(icons, wanted, full_train)
    raw, _ = generate_with_session(session, per_category, clean_alpha=False)
    figures["alpha_soft_ratio_model"] = soft_alpha_share(raw) / figures["alpha_soft_share_real"]
    return {**figures, "samples_per_category": per_category}

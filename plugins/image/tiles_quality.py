"""Quality figures of generated tiles against held-out real ones (numpy, scikit-image, Pillow; no torch).

- **Kind**: a judge (RBF support-vector machine on HOG, edge and colour features) trained on
  the real training split by ``fit_judge`` at export, committed as plain arrays in
  ``data/tiles_judge.npz``; ``judge_holdout_accuracy`` is its accuracy on held-out real tiles,
  ``kind_accuracy`` the share of generated tiles it labels with the kind asked for.
- **Look**: the share of generated tiles whose nearest look centre is the look asked for.
- **Diversity**: mean pairwise distance in the judge's standardised feature space, generated
  over held-out real, per kind x look (averaged); **not copies**: median distance to the
  nearest tile of the whole (committed) training split, generated over held-out real.
- **Pixel-art look**: median colours per tile and median edge sharpness (mean absolute step
  between neighbouring pixels over the tile's standard deviation), each with the 10th-90th
  percentile range of the held-out real tiles; **seams**: the mean step across the wrap-around
  edges over the mean step between interior neighbours, pooled over tiles and 2x2 sheets, and
  over each kind's tiles alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .quality_checks import check_pixels, mean_pairwise_distance, nearest_distances
from .tiles import KINDS, LOOKS, TILE, looks_for, noise_shape, quantise
from .tiles_data import DATA_DIR, TileSet, assign_looks, look_centres, tiles_held_out, tiles_train

__all__ = ["EVAL_PER_CONDITION", "EVAL_SEED", "JUDGE_FILE", "Judge", "condition_accuracies", "evaluate",
           "evaluate_session", "fit_judge", "generate_with_session", "load_judge"]

JUDGE_FILE = DATA_DIR / "tiles_judge.npz"
EVAL_PER_CONDITION = 48  # generated tiles per kind x look for the recipe's figures
EVAL_SEED = 20261203
_SVC_C = 5.0


def features(tiles: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) in [0, 1] -> (N, 296): HOG of the grey tile, edge energy along x and y,
    colour moments."""
    from skimage.feature import hog

    x = np.asarray(tiles, dtype=np.float64)
    grey = x.mean(axis=3)
    shapes = np.stack([hog(g, orientations=8, pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for g in grey])
    edges = np.stack([np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2)),
                      np.abs(np.diff(grey, axis=1)).mean(axis=(1, 2))], axis=1)
    return np.concatenate([shapes, edges, x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)


@dataclass(frozen=True)
class Judge:
    """A fitted binary RBF-SVC as arrays, so scoring needs no pickle and no scikit-learn."""

    mean: np.ndarray
    scale: np.ndarray
    support: np.ndarray
    dual: np.ndarray
    intercept: float
    gamma: float

    def standardise(self, tiles: np.ndarray) -> np.ndarray:
        return (features(tiles) - self.mean) / self.scale

    def kinds(self, tiles: np.ndarray) -> np.ndarray:
        """The judged kind (index into KINDS) of each tile."""
        z = self.standardise(tiles)
        d2 = (z * z).sum(1)[:, None] + (self.support**2).sum(1)[None, :] - 2.0 * z @ self.support.T
        decision = np.exp(-self.gamma * np.maximum(d2, 0.0)) @ self.dual + self.intercept
        return (decision > 0).astype(np.int64)


def fit_judge(train: TileSet, path: Path = JUDGE_FILE) -> Judge:
    """Fit the kind judge on real training tiles and write it to ``path`` (at export, on the full split)."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    raw = features(train.unit())
    scaler = StandardScaler().fit(raw)
    svc = SVC(C=_SVC_C, gamma="scale", random_state=0).fit(scaler.transform(raw), train.kind)
    judge = Judge(mean=scaler.mean_, scale=scaler.scale_, support=svc.support_vectors_,
                  dual=svc.dual_coef_[0], intercept=float(svc.intercept_[0]), gamma=float(svc._gamma))
    # The numpy decision must be scikit-learn's, or the committed judge is not the fitted one.
    check = train.unit()[:200]
    if not np.array_equal(judge.kinds(check), svc.predict(scaler.transform(features(check)))):
        raise RuntimeError("the array form of the judge disagrees with scikit-learn's")
    np.savez_compressed(path, mean=judge.mean, scale=judge.scale, support=judge.support.astype(np.float32),
                        dual=judge.dual, intercept=judge.intercept, gamma=judge.gamma)
    return load_judge(path)


def load_judge(path: Path = JUDGE_FILE) -> Judge:
    with np.load(path) as npz:
        return Judge(mean=npz["mean"], scale=npz["scale"], support=npz["support"].astype(np.float64),
                     dual=npz["dual"], intercept=float(npz["intercept"]), gamma=float(npz["gamma"]))


def colours_per_tile(tiles: np.ndarray) -> np.ndarray:
    levels = np.rint(np.asarray(tiles) * 255.0).astype(np.int64)
    codes = (levels[..., 0] << 16) | (levels[..., 1] << 8) | levels[..., 2]
    return np.array([len(np.unique(c)) for c in codes])


def sharpness(tiles: np.ndarray) -> np.ndarray:
    """Mean absolute step between neighbouring pixels over the tile's standard deviation (blur lowers it)."""
    x = np.asarray(tiles, dtype=np.float64)
    steps = np.concatenate([np.abs(np.diff(x, axis=1)).reshape(len(x), -1),
                            np.abs(np.diff(x, axis=2)).reshape(len(x), -1)], axis=1).mean(axis=1)
    return np.asarray(steps / np.maximum(x.reshape(len(x), -1).std(axis=1), 1e-6))


def seam_ratio(images: np.ndarray) -> float:
    """Mean step across the wrap-around edges over the mean step between interior neighbours (pooled)."""
    x = np.asarray(images, dtype=np.float64)
    wrap = np.concatenate([np.abs(x[:, 0] - x[:, -1]).ravel(), np.abs(x[:, :, 0] - x[:, :, -1]).ravel()])
    inner = np.concatenate([np.abs(np.diff(x, axis=1)).ravel(), np.abs(np.diff(x, axis=2)).ravel()])
    return float(wrap.mean() / inner.mean())


def _spread(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values, [10, 90])
    return float(low), float(high)


def evaluate(generated: TileSet | np.ndarray, kind: np.ndarray, look: np.ndarray,
             sheets: np.ndarray) -> dict[str, float]:
    """Figures of generated tiles (float (N, 32, 32, 3) in [0, 1], with the kind and look asked for).

    ``sheets`` are generated 2x2 sheets (float (M, 64, 64, 3)) for the sheet seam figure.
    """
    tiles = generated.unit() if isinstance(generated, TileSet) else np.asarray(generated, dtype=np.float32)
    if tiles.ndim != 4 or tiles.shape[1:] != (TILE, TILE, 3):
        raise ValueError(f"generated tiles must have shape (N, {TILE}, {TILE}, 3), got {tiles.shape}")
    check_pixels("generated tiles", tiles)
    held, judge = tiles_held_out(), load_judge()
    real = held.unit()
    z_real, z_gen = judge.standardise(real), judge.standardise(tiles)
    judged = judge.kinds(tiles)
    ratios = []
    for k in range(len(KINDS)):
        for lk in range(len(LOOKS)):
            gen_group = (kind == k) & (look == lk)
            real_group = (held.kind == k) & (held.look == lk)
            if gen_group.sum() >= 2 and real_group.sum() >= 2:
                spread = mean_pairwise_distance(z_gen[gen_group]) / mean_pairwise_distance(z_real[real_group])
                ratios.append(spread)
    real_colours, gen_colours = colours_per_tile(real), colours_per_tile(tiles)
    real_sharp, gen_sharp = sharpness(real), sharpness(tiles)
    train = tiles_train().unit()  # the whole training split is committed
    figures = {
        "judge_holdout_accuracy": float(np.mean(judge.kinds(real) == held.kind)),
        "kind_accuracy": float(np.mean(judged == kind)),
        **{f"kind_accuracy_{name}": float(np.mean(judged[kind == k] == k)) for k, name in enumerate(KINDS)},
        "look_accuracy": _look_accuracy(tiles, look),
        "diversity_ratio": float(np.mean(ratios)),
        "copy_ratio": float(np.median(nearest_distances(tiles, train))
                            / np.median(nearest_distances(real, train))),
        "colours_median": float(np.median(gen_colours)),
        "colours_real_p10": _spread(real_colours)[0], "colours_real_p90": _spread(real_colours)[1],
        "sharpness_median": float(np.median(gen_sharp)),
        "sharpness_real_p10": _spread(real_sharp)[0], "sharpness_real_p90": _spread(real_sharp)[1],
        "seam_ratio_tiles": seam_ratio(tiles),
        # Per kind too: pooled, walls well under 1 can hide floors that frame themselves.
        **{f"seam_ratio_tiles_{name}": seam_ratio(tiles[kind == k]) for k, name in enumerate(KINDS)},
        "seam_ratio_sheets": seam_ratio(sheets),
        "seam_ratio_real": seam_ratio(real),
    }
    return figures


def _look_accuracy(tiles: np.ndarray, look: np.ndarray) -> float:
    return float(np.mean(assign_looks(_bytes(tiles), look_centres()) == look))


def condition_accuracies(tiles: np.ndarray, kind: np.ndarray, look: np.ndarray,
                         judge: Judge | None = None) -> tuple[float, float]:
    """(share judged the kind asked for, share nearest the look asked for) of generated tiles."""
    judge = judge or load_judge()
    return float(np.mean(judge.kinds(tiles) == kind)), _look_accuracy(tiles, look)


def _bytes(tiles: np.ndarray) -> np.ndarray:
    return np.asarray(np.rint(np.clip(tiles, 0.0, 1.0) * 255.0), dtype=np.uint8)




def generate_with_session(session: Any, per_condition: int, seed: int = EVAL_SEED,
                          palette: int | None = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tiles for every kind x look and 2x2 sheets, sampled and quantised exactly as the server does.

    Returns (tiles (N, 32, 32, 3), kind (N,), look (N,), sheets (M, 64, 64, 3)).
    """
    tiles: list[np.ndarray] = []
    sheets: list[np.ndarray] = []
    kinds: list[int] = []
    looks: list[int] = []
    for k in range(len(KINDS)):
        for lk, look in enumerate(LOOKS):
            for rows, out in ((1, tiles), (2, sheets)):
                n = per_condition if rows == 1 else max(2, per_condition // 8)
                condition_seed = seed + 100 * k + 10 * lk + rows
                noise = np.random.default_rng(condition_seed).standard_normal(
                    (n, *noise_shape(rows, rows))).astype(np.float32)
                images = session.run(["image"], {"noise": noise, "kind": np.full(n, k, dtype=np.int64),
                                                 "look": looks_for(condition_seed, n, look)})[0]
                out.extend(quantise(np.transpose(image, (1, 2, 0)), palette) for image in images)
            kinds += [k] * per_condition
            looks += [lk] * per_condition
    return np.stack(tiles), np.array(kinds), np.array(looks), np.stack(sheets)


def evaluate_session(session: Any, per_condition: int = EVAL_PER_CONDITION) -> dict[str, Any]:
    """The figures the recipe records and the tests recompute from the shipped ONNX."""
    tiles, kinds, looks, sheets = generate_with_session(session, per_condition)
    figures = evaluate(tiles, kinds, looks, sheets)
    raw, _, _, _ = generate_with_session(session, max(2, per_condition // 4), palette=None)
    figures["colours_median_full_colour"] = float(np.median(colours_per_tile(raw)))
    figures["sharpness_median_full_colour"] = float(np.median(sharpness(raw)))
    return {**figures, "samples_per_condition": per_condition}

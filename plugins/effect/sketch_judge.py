"""A realism judge for coloured drawings: tells real OpenMoji colour images from a method's output.

Features of each image composited on white: colour histograms in CIELAB (lightness, and
chroma a*/b*), the opaque share, and a histogram of oriented gradients of the lightness. A
logistic regression (scikit-learn) learns real vs one baseline's output on half the held-out
drawings and is scored on the other half, then the halves swap (cross-fitting: no image is
judged by a judge that saw it). The same judge also labels the model's results: the share it
calls real says how far the model got past what gave that baseline away.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2lab
from skimage.feature import hog

__all__ = ["CHROMA_BINS", "CHROMA_RANGE", "clip_chroma", "features", "judged_real", "on_white"]

# a* and b* in 7 bins of 26.7 centred on grey: an edge at 0 would sort the greys by rounding noise
# (skimage gives black a* = b* = 0 and other greys a* -0.002, b* +0.005), which a judge can learn.
# Colours past the outer bins (sRGB's blues reach b* -108) are counted in them, not dropped.
CHROMA_BINS = 7
CHROMA_EDGE = 3.5 * 160.0 / 6.0
CHROMA_RANGE = ((-CHROMA_EDGE, CHROMA_EDGE),) * 2


def clip_chroma(lab: np.ndarray) -> np.ndarray:
    """(..., 3) CIELAB with a* and b* brought inside CHROMA_RANGE, so a histogram counts every pixel."""
    return np.concatenate([lab[..., :1], np.clip(lab[..., 1:], -CHROMA_EDGE, CHROMA_EDGE)], axis=-1)


def on_white(rgba: np.ndarray) -> np.ndarray:
    """(N, 4, H, W) straight RGBA -> (N, H, W, 3) RGB over white paper."""
    alpha = rgba[:, 3:]
    return np.clip(rgba[:, :3] * alpha + (1.0 - alpha), 0.0, 1.0).transpose(0, 2, 3, 1)


def features(rgba: np.ndarray) -> np.ndarray:
    rows = []
    for image, alpha in zip(on_white(rgba), rgba[:, 3], strict=True):
        lab = clip_chroma(rgb2lab(image))
        weight = (alpha > 0.5).ravel().astype(np.float64)
        total = max(weight.sum(), 1.0)
        lightness = np.histogram(lab[..., 0].ravel(), bins=8, range=(0, 100), weights=weight)[0] / total
        chroma = np.histogram2d(lab[..., 1].ravel(), lab[..., 2].ravel(), bins=CHROMA_BINS,
                                range=CHROMA_RANGE, weights=weight)[0].ravel() / total
        gradients = hog(lab[..., 0] / 100.0, orientations=8, pixels_per_cell=(16, 16), cells_per_block=(1, 1))
        rows.append(np.concatenate([lightness, chroma, gradients, [weight.mean()]]))
    return np.asarray(rows, np.float64)


def judged_real(real: np.ndarray, fake: np.ndarray, others: dict[str, np.ndarray]) -> dict[str, float]:
    """Cross-fitted judge of ``real`` vs ``fake`` (feature rows of the same drawings, in order).

    Returns its accuracy on unseen real and fake, and for each of ``others`` (e.g. the model's
    results for the same drawings) the share of unseen ones it calls real.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    halves = (np.arange(len(real)) % 2 == 0, np.arange(len(real)) % 2 == 1)
    correct, seen = 0.0, 0
    called_real = dict.fromkeys(others, 0.0)
    for fit_on, score_on in (halves, halves[::-1]):
        judge = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=5000))
        x = np.concatenate([real[fit_on], fake[fit_on]])
        y = np.concatenate([np.ones(int(fit_on.sum())), np.zeros(int(fit_on.sum()))])
        judge.fit(x, y)
        correct += float(np.sum(judge.predict(real[score_on]) == 1))
        correct += float(np.sum(judge.predict(fake[score_on]) == 0))
        seen += 2 * int(score_on.sum())
        for name, rows in others.items():
            called_real[name] += float(np.sum(judge.predict(rows[score_on]) == 1))
    return {"accuracy": correct / seen, **{name: value / len(real) for name, value in called_real.items()}}

"""Hand-drawn strokes from clean vector line art: what a pen on a tablet or a mouse does to a line.

OpenMoji's lines are clean vectors; an artist's are not. ``roughen`` turns line art into what a
hand would draw with the same intent, at a ``strength`` in [0, 1]: a slow wobble of the whole
drawing (applied to its colour version too, so the pair still agrees), fast jitter of the pen,
thicker or thinner strokes, pressure (lighter ink), gaps where the pen lifted and overshoot
where a stroke ran past its end. Numpy and SciPy only: training and the held-out figures use it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from museforge import defer_import

defer_import("scipy.ndimage")  # imported where used, after start-up (see defer_import)

__all__ = ["Roughened", "pose_field", "roughen", "warp"]


@dataclass(frozen=True)
class Roughened:
    lines: np.ndarray  # (H, W) float32 darkness in [0, 1]
    colour: np.ndarray | None  # (C, H, W) the colour version under the same wobble


@functools.lru_cache(maxsize=16)
def _upsampler(size: int, cells: int) -> np.ndarray:
    """(size, cells): cubic-spline upsampling of a cells-long signal, as a matrix (the identity zoomed)."""
    from scipy import ndimage
    eye = np.eye(cells, dtype=np.float64)
    zoomed = ndimage.zoom(eye, (size / cells, 1), order=3, mode="nearest", grid_mode=True)
    return np.asarray(zoomed, np.float32)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int,
                  amplitude: float) -> np.ndarray:
    """A (2, H, W) displacement: Gaussian noise on a cells x cells grid, smoothly upsampled."""
    coarse = rng.standard_normal((2, cells, cells)).astype(np.float32) * np.float32(amplitude)
    return np.asarray(_upsampler(shape[0], cells) @ coarse @ _upsampler(shape[1], cells).T, np.float32)


def warp(plane: np.ndarray, field: np.ndarray, order: int = 1) -> np.ndarray:
    """``plane`` ((H, W) or (C, H, W)) sampled at each pixel plus ``field``; zero outside."""
    from scipy import ndimage
    h, w = plane.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    coords = np.stack([yy + field[0], xx + field[1]])
    if plane.ndim == 2:
        return np.asarray(ndimage.map_coordinates(plane, coords, order=order, mode="constant"), np.float32)
    return np.stack([warp(channel, field, order) for channel in plane])


def _overshoot(lines: np.ndarray, rng: np.random.Generator, count: int, width: float) -> np.ndarray:
    """Short strokes through ``count`` inked pixels along the line there (across the ink's gradient)."""
    from scipy import ndimage
    out = lines.copy()
    ys, xs = np.nonzero(lines > 0.5)
    if len(ys) == 0 or count == 0:
        return out
    gy, gx = np.gradient(ndimage.gaussian_filter(lines, 1.0))
    h, w = lines.shape
    for k in rng.integers(0, len(ys), size=count):
        dy, dx = float(gx[ys[k], xs[k]]), float(-gy[ys[k], xs[k]])
        norm = float(np.hypot(dy, dx))
        dy, dx = (dy / norm, dx / norm) if norm > 1e-6 else (0.0, 1.0)
        t = np.linspace(-1.0, 1.0, 17) * rng.uniform(2.0, 5.0)
        y, x = np.rint(ys[k] + t * dy).astype(int), np.rint(xs[k] + t * dx).astype(int)
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        out[y[inside], x[inside]] = np.maximum(out[y[inside], x[inside]], min(1.0, width))
    return out


def _gaps(lines: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    ys, xs = np.nonzero(lines > 0.5)
    if len(ys) == 0:
        return lines
    keep = np.ones_like(lines)
    h, w = lines.shape
    for k in rng.integers(0, len(ys), size=count):
        radius = rng.uniform(1.0, 2.0)
        y0, x0 = max(0, ys[k] - 2), max(0, xs[k] - 2)
        yy, xx = np.mgrid[y0:min(h, ys[k] + 3), x0:min(w, xs[k] + 3)]
        keep[yy, xx] *= ((yy - ys[k]) ** 2 + (xx - xs[k]) ** 2 > radius**2)
    return lines * keep


def pose_field(shape: tuple[int, int], scale: float, shift: tuple[float, float], flip: bool) -> np.ndarray:
    """The (2, H, W) displacement that scales a drawing about its centre, shifts and mirrors it."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    source_x = cx + (xx - cx - shift[1]) / scale
    if flip:
        source_x = 2.0 * cx - source_x
    source_y = cy + (yy - cy - shift[0]) / scale
    return np.stack([source_y - yy, source_x - xx]).astype(np.float32)


def roughen(lines: np.ndarray, rng: np.random.Generator, strength: float = 1.0,
            colour: np.ndarray | None = None, pose: np.ndarray | None = None) -> Roughened:
    """``lines`` ((H, W) darkness in [0, 1]) as a hand at ``strength`` would draw them.

    ``colour`` ((C, H, W)) follows the slow wobble only, since it is the drawing's intent
    that wobbles; pen jitter, width, pressure, gaps and overshoot change the ink alone.
    ``pose`` (a ``pose_field``) moves both first.
    """
    from scipy import ndimage
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    lines = np.asarray(lines, np.float32)
    shape = (lines.shape[0], lines.shape[1])
    if strength == 0.0:
        if pose is None:
            return Roughened(lines.copy(), None if colour is None else np.asarray(colour, np.float32).copy())
        moved = None if colour is None else warp(np.asarray(colour, np.float32), pose)
        return Roughened(warp(lines, pose), moved)
    wobble = _smooth_field(rng, shape, 4, 1.2 * strength) + (0.0 if pose is None else pose)
    # One resampling of the ink for both motions: each one blurs a thin line a little.
    out = warp(lines, wobble + _smooth_field(rng, shape, 16, 0.45 * strength))
    warped_colour = None if colour is None else warp(np.asarray(colour, np.float32), wobble)
    width = rng.uniform(-1.0, 1.0) * strength
    if width > 0.35:
        out = np.maximum(out, ndimage.grey_dilation(out, size=(2, 2)) * min(1.0, width + 0.2))
    elif width < -0.35:
        out = out * np.float32(1.0 + 0.5 * width)  # a lighter, thinner-looking pencil
    out = out * np.float32(rng.uniform(1.0 - 0.3 * strength, 1.0))
    ink = int(np.count_nonzero(out > 0.5))
    out = _gaps(out, rng, int(rng.poisson(strength * ink / 120.0)))
    out = _overshoot(out, rng, int(rng.poisson(strength * ink / 150.0)), float(out.max(initial=0.0)))
    return Roughened(np.clip(out, 0.0, 1.0).astype(np.float32), warped_colour)

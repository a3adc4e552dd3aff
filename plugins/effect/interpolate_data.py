"""Frame triplets with synthetic camera motion, rendered from still photographs (numpy only).

A triplet is two outer frames (t = 0 and t = 1) and the frame at some t between them,
all three sampled from one photograph under one continuous motion, with one sampler
(Keys cubic convolution), so the ground truth is resampled exactly like the inputs.
The motion is a similarity transform whose parameters grow linearly with time, about
a pivot c. With s = t - 1/2, output pixel p reads the source at

    src(p, t) = c + b + (1 + zoom * s) * R(rotation * s) (p - c) + shift * s

where c is the pivot (the crop centre for evaluation; anywhere within PIVOT px of the
patch centre in training, so a small patch sees the displacements a corner of a large
frame sees) and b a random sub-pixel offset shared by the three frames (so the middle
frame is resampled too, never a plain crop). ``shift``, ``zoom`` and ``rotation`` are
the total changes between the two outer frames, drawn uniformly from the ranges below.
numpy only: the quality tests rebuild exactly what training saw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_SHIFT = 8.0  # px per axis, between the two outer frames
MAX_ZOOM = 0.03  # relative scale change between the two outer frames
MAX_ROTATION = 2.0  # degrees between the two outer frames
HELD_OUT_SEED = 20261123
HELD_OUT_CROP = 256
HELD_OUT_PER_PHOTO = 6
PIVOT = HELD_OUT_CROP / 2  # training pivots: up to an evaluation crop's half side away


@dataclass(frozen=True)
class Motion:
    """Total change between the outer frames; ``base`` is the shared sub-pixel offset (y, x)."""

    shift_y: float
    shift_x: float
    zoom: float
    rotation: float  # degrees
    base_y: float = 0.0
    base_x: float = 0.0
    pivot_y: float = 0.0  # centre of the zoom and rotation, from the crop centre
    pivot_x: float = 0.0


@dataclass(frozen=True)
class Triplet:
    """HxWx3 float32 frames in [0, 1]: the two inputs and the truth at ``t``."""

    first: np.ndarray
    second: np.ndarray
    middle: np.ndarray
    t: float
    motion: Motion
    source: str = ""


def random_motion(rng: np.random.Generator, pivot: float = 0.0) -> Motion:
    """Uniform in the ranges above; the zoom/rotation centre uniform within ``pivot`` px."""
    return Motion(
        shift_y=float(rng.uniform(-MAX_SHIFT, MAX_SHIFT)),
        shift_x=float(rng.uniform(-MAX_SHIFT, MAX_SHIFT)),
        zoom=float(rng.uniform(-MAX_ZOOM, MAX_ZOOM)),
        rotation=float(rng.uniform(-MAX_ROTATION, MAX_ROTATION)),
        base_y=float(rng.random()),
        base_x=float(rng.random()),
        pivot_y=float(rng.uniform(-pivot, pivot)),
        pivot_x=float(rng.uniform(-pivot, pivot)),
    )


def margin_for(size: int, pivot: float = 0.0) -> int:
    """Source pixels needed around a ``size`` crop so no frame samples outside the photo."""
    radius = math.sqrt(2.0) * (size / 2 + pivot)
    reach = (math.sqrt(2.0) * MAX_SHIFT / 2 + radius * (MAX_ZOOM / 2 + math.radians(MAX_ROTATION) / 2)
             * 1.05 + math.sqrt(2.0))
    return math.ceil(reach) + 3  # + the cubic kernel's support


def _keys(f: np.ndarray) -> list[np.ndarray]:
    """Keys (a = -1/2) cubic convolution weights for taps at -1, 0, 1, 2 of fraction ``f``."""
    f2, f3 = f * f, f * f * f
    return [
        -0.5 * f3 + f2 - 0.5 * f,
        1.5 * f3 - 2.5 * f2 + 1.0,
        -1.5 * f3 + 2.0 * f2 + 0.5 * f,
        0.5 * f3 - 0.5 * f2,
    ]


def sample_cubic(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample HxWxC ``image`` at float coordinates (any shape), edge-clamped; result [..., C]."""
    h, w, c = image.shape
    flat = np.ascontiguousarray(image, np.float32).reshape(h * w, c)
    iy, ix = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    wy, wx = _keys((ys - iy).astype(np.float32)), _keys((xs - ix).astype(np.float32))
    out = np.zeros((*ys.shape, c), np.float32)
    for dy in range(4):
        rows = np.clip(iy + dy - 1, 0, h - 1) * w
        for dx in range(4):
            # One flat gather per tap: much cheaper than 2-D fancy indexing.
            taps = np.take(flat, rows + np.clip(ix + dx - 1, 0, w - 1), axis=0)
            out += (wy[dy] * wx[dx])[..., None] * taps
    return out


def _matrix(motion: Motion, t: float) -> np.ndarray:
    """The linear part of the motion at ``t``, acting on (y, x) offsets from the centre."""
    s = t - 0.5
    scale = 1.0 + motion.zoom * s
    angle = math.radians(motion.rotation * s)
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[cos, sin], [-sin, cos]])


def _offsets(size: int, motion: Motion) -> np.ndarray:
    """[2, size, size]: each pixel's (y, x) from the motion's pivot."""
    centre = (size - 1) / 2.0
    grid = np.meshgrid(np.arange(size, dtype=np.float64) - centre - motion.pivot_y,
                       np.arange(size, dtype=np.float64) - centre - motion.pivot_x, indexing="ij")
    return np.stack(grid)


def _coordinates(region_shape: tuple[int, ...], size: int, motion: Motion,
                 t: float) -> tuple[np.ndarray, np.ndarray]:
    s = t - 0.5
    src = np.tensordot(_matrix(motion, t), _offsets(size, motion), axes=(1, 0))
    ys = (region_shape[0] - 1) / 2.0 + motion.pivot_y + motion.base_y + src[0] + motion.shift_y * s
    xs = (region_shape[1] - 1) / 2.0 + motion.pivot_x + motion.base_x + src[1] + motion.shift_x * s
    return ys, xs


def true_flow(size: int, motion: Motion, t: float, to: float) -> np.ndarray:
    """[2, size, size] (dy, dx): where each pixel of the frame at ``t`` is in the frame at ``to``.

    The backward flow a warping interpolator needs: frame_to(p + flow(p)) = frame_t(p).
    Solves A(to) (q - o) + shift * s_to = A(t) (p - o) + shift * s_t for q.
    """
    p = _offsets(size, motion)
    shift = np.array([motion.shift_y, motion.shift_x])[:, None, None] * (t - to)
    moved = np.tensordot(_matrix(motion, t), p, axes=(1, 0)) + shift
    q = np.tensordot(np.linalg.inv(_matrix(motion, to)), moved, axes=(1, 0))
    return (q - p).astype(np.float32)


def render(region: np.ndarray, size: int, motion: Motion, times: Sequence[float]) -> list[np.ndarray]:
    """``size`` x ``size`` frames at ``times`` from the centre of ``region`` (HxWx3), one gather."""
    coords = [_coordinates(region.shape, size, motion, t) for t in times]
    ys = np.stack([c[0] for c in coords])
    xs = np.stack([c[1] for c in coords])
    frames = np.clip(sample_cubic(region, ys, xs), 0.0, 1.0)
    return list(frames)


def make_triplet(region: np.ndarray, size: int, motion: Motion, t: float, source: str = "") -> Triplet:
    if min(region.shape[:2]) < size + 2 * margin_for(size, max(abs(motion.pivot_y), abs(motion.pivot_x))):
        raise ValueError(f"region {region.shape[:2]} too small for a {size} crop with its margin")
    first, second, middle = render(region, size, motion, (0.0, 1.0, t))
    return Triplet(first, second, middle, t, motion, source)


def random_region(photos: Sequence[np.ndarray], rng: np.random.Generator, side: int) -> np.ndarray:
    """A random ``side`` x ``side`` region of a photograph (area-weighted), flipped / turned."""
    areas = np.array([p.shape[0] * p.shape[1] for p in photos], np.float64)
    photo = photos[int(rng.choice(len(photos), p=areas / areas.sum()))]
    y = int(rng.integers(0, photo.shape[0] - side + 1))
    x = int(rng.integers(0, photo.shape[1] - side + 1))
    region = np.rot90(photo[y:y + side, x:x + side], k=int(rng.integers(4)))
    return region[:, ::-1] if rng.integers(2) else region


def training_t(rng: np.random.Generator) -> float:
    """Half the samples at the midpoint (the common case), half spread over what ``frames`` asks."""
    return 0.5 if rng.random() < 0.5 else float(rng.uniform(1 / 16, 15 / 16))


def training_batch(photos: Sequence[np.ndarray], rng: np.random.Generator, count: int,
                   size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first, second, t, truth) as float32: [N, 3, size, size] x 2, [N], [N, 3, size, size]."""
    side = size + 2 * margin_for(size, PIVOT)
    first = np.empty((count, 3, size, size), np.float32)
    second, truth = np.empty_like(first), np.empty_like(first)
    times = np.empty(count, np.float32)
    for i in range(count):
        t = training_t(rng)
        triplet = make_triplet(random_region(photos, rng, side), size, random_motion(rng, PIVOT), t)
        first[i] = triplet.first.transpose(2, 0, 1)
        second[i] = triplet.second.transpose(2, 0, 1)
        truth[i] = triplet.middle.transpose(2, 0, 1)
        times[i] = t
    return first, second, times, truth


def held_out_triplets(photos: Sequence[np.ndarray], names: Sequence[str], t: float = 0.5,
                      per_photo: int = HELD_OUT_PER_PHOTO, size: int = HELD_OUT_CROP,
                      seed: int = HELD_OUT_SEED) -> list[Triplet]:
    """Deterministic evaluation triplets: the same crops and motions for every ``t``."""
    rng = np.random.default_rng(seed)
    side = size + 2 * margin_for(size)
    triplets = []
    for name, photo in zip(names, photos, strict=True):
        if min(photo.shape[:2]) < side:
            raise ValueError(f"{name} is smaller than a {side} px evaluation region")
        for _ in range(per_photo):
            y = int(rng.integers(0, photo.shape[0] - side + 1))
            x = int(rng.integers(0, photo.shape[1] - side + 1))
            motion = random_motion(rng)
            triplets.append(make_triplet(photo[y:y + side, x:x + side], size, motion, t, name))
    return triplets

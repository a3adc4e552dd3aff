"""Training batches for ``effect.sketch``: posed, hand-roughened line art, hints, and the colour to reach.

80% of pairs are moved as a whole (scale 0.8-1.1 about the centre, shift up to 4 px, half of
them mirrored), then its ink is roughened at a random strength (none for 30% of pairs), so the
network meets strokes as people draw them. Hints: none for 40% of pairs, one to six scribbles
for 40%, and for 20% the colour version kept outside a random mask (what redoing a region
asks); half of the scribbled pairs have each scribble filling its enclosed region, as served by
default. A quarter of the scribbled pairs have their colours turned about the grey axis, hints
and target alike, so a hint in an unusual colour is followed rather than overruled. Numpy only.
"""

from __future__ import annotations

import numpy as np

from .sketch_data import SketchPairs
from .sketch_hints import empty, keep_outside, random_mask, scribbles
from .sketch_regions import fill_regions
from .sketch_strokes import pose_field, roughen

__all__ = ["Batch", "hue_turn", "posed_pair", "roughened_pair", "training_batch"]

_TURNED = 0.25  # share of scribbled pairs recoloured, so an unusual hint colour is followed
_FILLED = 0.5  # share of scribbled pairs whose scribbles fill their regions (hint_fill="region")

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # lines (N,1,H,W), hints (N,5,H,W), target (N,4,H,W)


def hue_turn(rgb: np.ndarray, angle: float) -> np.ndarray:
    """(3, ...) colours turned by ``angle`` radians about the grey axis (greys and black stay)."""
    axis = np.full(3, 1.0 / np.sqrt(3.0))
    cross = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    turn = np.cos(angle) * np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * np.outer(axis, axis)
    return np.clip(np.tensordot(turn.astype(np.float32), rgb, axes=1), 0.0, 1.0).astype(np.float32)


def roughened_pair(lines: np.ndarray, colour: np.ndarray, rng: np.random.Generator, strength: float,
                   pose: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``sketch_strokes.roughen`` of a drawing ((H, W) ink) and its (4, H, W) straight RGBA colour version."""
    # Moved premultiplied, so an edge pixel does not darken towards the zeros under transparency.
    premultiplied = np.concatenate([colour[:3] * colour[3:], colour[3:]])
    rough = roughen(lines, rng, strength, premultiplied, pose)
    assert rough.colour is not None
    alpha = np.clip(rough.colour[3:], 0.0, 1.0)
    rgb = np.where(alpha > 1e-3, rough.colour[:3] / np.maximum(alpha, 1e-3), 0.0)
    return rough.lines, np.concatenate([np.clip(rgb, 0.0, 1.0), alpha]).astype(np.float32)


def posed_pair(lines: np.ndarray, colour: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A drawing and its colour version as training sees them: mostly scaled, shifted or
    mirrored, mostly roughened at a random strength."""
    h, w = lines.shape
    pose = None
    if rng.random() < 0.8:
        shift = (float(rng.uniform(-4, 4)), float(rng.uniform(-4, 4)))
        pose = pose_field((h, w), float(rng.uniform(0.8, 1.1)), shift, bool(rng.random() < 0.5))
    strength = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.2, 1.0))
    return roughened_pair(lines, colour, rng, strength, pose)


def training_batch(pairs: SketchPairs, rng: np.random.Generator, size: int) -> Batch:
    h, w = pairs.lines.shape[1:]
    lines_out = np.empty((size, 1, h, w), np.float32)
    hints_out = np.empty((size, 5, h, w), np.float32)
    target_out = np.empty((size, 4, h, w), np.float32)
    for n, i in enumerate(rng.integers(0, len(pairs), size=size)):
        colour = pairs.colour[i].transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
        lines, target = posed_pair(pairs.lines[i].astype(np.float32) / np.float32(255.0), colour, rng)
        mode = rng.random()
        if 0.4 <= mode < 0.8 and rng.random() < _TURNED:
            turned = hue_turn(target[:3], float(rng.uniform(0.5, 2 * np.pi - 0.5)))
            target = np.concatenate([turned, target[3:]])
        if mode < 0.4:
            hints = empty(h, w)
        elif mode < 0.8:
            hints = scribbles(target, lines, rng, int(rng.integers(1, 7)))
            if rng.random() < _FILLED:  # as served by default: each scribble fills its region
                hints = fill_regions(hints, lines)
        else:
            hints = keep_outside(target, random_mask(rng, h, w))
        lines_out[n, 0], hints_out[n], target_out[n] = lines, hints, target
    return lines_out, hints_out, target_out

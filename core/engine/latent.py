"""Latent sampling shared by generators: seeds, independent draws and walks between seeds."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel, Field

MAX_FRAMES = 120


class Variations(BaseModel):
    """Parameters every latent generator shares: the truncation of its draws, and morph
    sequences between two seeds (inspiration sheets, film morphs)."""

    truncation: float = Field(
        1.0, gt=0.0, le=1.0,
        description="Scale of the Gaussian draws the network starts from: 1 is the distribution it "
        "was trained on; lower values trade variety for images closer to the typical one of what "
        "was asked (e.g. tiles judged the kind asked for more often). 1 leaves every output as it was.",
    )

    interpolate_to: int | None = Field(
        None, ge=0, le=2**63 - 1,
        description="A second seed: walk smoothly from `seed` to this one over `frames` frames.",
    )
    frames: int = Field(
        8, ge=2, le=MAX_FRAMES, description="Frames in a walk (with interpolate_to), ends included."
    )

    def images_per_item(self) -> int:
        return self.frames if self.interpolate_to is not None else 1


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of two Gaussian draws, treated as one vector each.

    Unlike a straight line, it keeps the norm a Gaussian draw has, so the middle frames
    look like samples rather than washed-out averages.
    """
    flat_a, flat_b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    cos = np.dot(flat_a, flat_b) / (np.linalg.norm(flat_a) * np.linalg.norm(flat_b))
    omega = float(np.arccos(np.clip(cos, -1.0, 1.0)))
    if omega < 1e-6:
        mixed = (1.0 - t) * flat_a + t * flat_b
    else:
        mixed = (np.sin((1.0 - t) * omega) * flat_a + np.sin(t * omega) * flat_b) / np.sin(omega)
    return mixed.reshape(a.shape).astype(a.dtype)


def latents(
    shape: tuple[int, ...], seed: int, count: int, variations: Variations
) -> Iterator[tuple[int, np.ndarray]]:
    """(output index, latent) pairs: ``count`` draws, or ``count`` walks of ``frames`` frames.

    Every draw is scaled by ``variations.truncation`` (the "truncation trick": draws pulled
    toward the mean give more typical samples); a walk's ends are both scaled, so it stays
    a walk between two truncated draws.
    """
    first = _truncated(np.random.default_rng(seed).standard_normal((count, *shape)), variations.truncation)
    if variations.interpolate_to is None:
        yield from enumerate(first)
        return
    last = _truncated(np.random.default_rng(variations.interpolate_to).standard_normal((count, *shape)),
                      variations.truncation)
    frames = variations.frames
    for item in range(count):
        for frame in range(frames):
            yield item * frames + frame, slerp(first[item], last[item], frame / (frames - 1))


def _truncated(draws: np.ndarray, truncation: float) -> np.ndarray:
    # At 1 the float32 draws are returned untouched: the same seed keeps its exact pixels.
    draws = draws.astype(np.float32)
    return draws if truncation == 1.0 else (draws * np.float32(truncation)).astype(np.float32)

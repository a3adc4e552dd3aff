"""Latent draws: seeds, truncation and walks (museforge.latents)."""

from __future__ import annotations

import numpy as np

from museforge import Variations, latents


def test_truncation_one_gives_the_seeds_own_draws_bit_for_bit() -> None:
    expected = np.random.default_rng(42).standard_normal((3, 8)).astype(np.float32)
    drawn = [z for _, z in latents((8,), 42, 3, Variations())]
    np.testing.assert_array_equal(np.stack(drawn), expected)


def test_truncation_scales_every_draw_and_both_ends_of_a_walk() -> None:
    plain = [z for _, z in latents((8,), 7, 2, Variations(interpolate_to=9, frames=4))]
    half = [z for _, z in latents((8,), 7, 2, Variations(interpolate_to=9, frames=4, truncation=0.5))]
    assert len(half) == 8 and all(z.dtype == np.float32 for z in half)
    for a, b in zip(plain, half, strict=True):
        np.testing.assert_allclose(b, a * 0.5, rtol=1e-5, atol=1e-6)

"""The rater simulator's taste for looks: what the catalogue looks like is rendered for real, a
taste weighs it, and a world without it is the world it always was."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.raters import GENERATORS, Artifact, modality, simulate
from bench.raters_looks import described, engine, judged
from museforge.feedback.looks import MEASURES

SMALL: dict[str, Any] = {"artifacts": 120, "users": 20, "seed": 3}


def seen_for(artifacts: list[Artifact], rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {a.sha256: rng.normal(0.0, 1.0, 4 if modality(a.generator) == "mesh" else 6) for a in artifacts}


def test_a_world_without_looks_is_unchanged_and_one_with_them_differs_only_in_taste() -> None:
    plain = simulate(**SMALL)
    seen = seen_for(plain.artifacts, np.random.default_rng(0))
    assert simulate(**SMALL, looks=0.0, seen=seen).events == plain.events
    looked = simulate(**SMALL, looks=1.0, seen=seen)
    assert looked.artifacts == plain.artifacts
    for user, taste in looked.tastes.items():
        before = plain.tastes[user]
        assert taste.values == before.values and np.array_equal(taste.generators, before.generators)
        norms = {k: round(float(np.linalg.norm(w)), 9) for k, w in taste.sight.items()}
        assert norms == {"image": 1, "mesh": 1}
        for artifact in looked.artifacts[:10]:
            extra = float(taste.sight[modality(artifact.generator)] @ seen[artifact.sha256])
            assert taste.utility(artifact) == pytest.approx(before.utility(artifact) + extra)
    assert looked.events != plain.events
    with pytest.raises(ValueError, match="seen"):
        simulate(**SMALL, looks=1.0)


def test_users_of_one_archetype_like_alike_looks() -> None:
    plain = simulate(**SMALL)
    looked = simulate(**SMALL, looks=1.0, seen=seen_for(plain.artifacts, np.random.default_rng(1)))
    by: dict[int, list[np.ndarray]] = {}
    for taste in looked.tastes.values():
        by.setdefault(taste.archetype, []).append(taste.sight["image"])
    pairs = [(a, b, i == j) for i, group in by.items() for j, other in by.items()
             for a in group for b in other if a is not b]
    alike = np.mean([float(a @ b) for a, b, same in pairs if same])
    apart = np.mean([float(a @ b) for a, b, same in pairs if not same])
    assert alike > apart + 0.4, (alike, apart)


def test_the_catalogue_is_judged_and_described_from_real_renders() -> None:
    world = simulate(artifacts=40, users=4, seed=5)
    few = [a for a in world.artifacts if a.generator in ("image.tiles", "image.faces", "mesh.props")
           and a.parameters.get("resolution", 48) == 48 and a.parameters.get("size", 32) == 32][:9]
    assert {a.generator for a in few} == {"image.tiles", "image.faces", "mesh.props"}
    made = engine()
    measured, vectors = judged(made, few), described(made, few)
    assert set(measured) == set(vectors) == {a.sha256 for a in few}
    for generator in {a.generator for a in few}:
        own = np.stack([measured[a.sha256] for a in few if a.generator == generator])
        assert own.shape[1] == (4 if generator == "mesh.props" else 6)
        if len(own) > 1:
            assert np.allclose(own.mean(axis=0), 0.0, atol=1e-9)  # standardised within its generator
    for artifact in few:  # an image's measures, or a mesh's
        described_as = vectors[artifact.sha256]
        assert described_as.shape == (len(MEASURES),)
        assert (described_as[6:] == 0).all() != (artifact.generator == "mesh.props")
    assert all(g in GENERATORS for g in {a.generator for a in few})

"""The parts steering is made of, each on its own: exact draws, choices that follow a draw, the
Bradley-Terry reward model, what an output looks like as features, the diversity floor, and
the engine's refusals when nothing can steer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import museforge
from museforge import Draw, Variations, item_choices, latents
from museforge.engine.errors import InvalidArgument
from museforge.engine.latent import latent_of
from museforge.feedback.media_features import image_features, media_features, mesh_features
from museforge.feedback.reward import RewardModel, preference_pairs
from museforge.feedback.steering import child_seeds, fit, select
from tests.servers import inline_engine


def test_a_draw_names_the_very_latent_a_request_drew() -> None:
    shape = (4, 3, 3)
    drawn = dict(latents(shape, 99, 5, Variations(truncation=0.8)))
    for index in range(5):
        np.testing.assert_array_equal(Draw(seed=99, index=index, truncation=0.8).latent(shape), drawn[index])
    # And draws in a request give exactly their latents, in order, whatever the request's seed.
    given = [Draw(seed=99, index=3, truncation=0.8), Draw(seed=5)]
    out = [z for _, z in latents(shape, 12345, 2, Variations.model_validate({"draws": given},
                                                                             context={"count": 2}))]
    np.testing.assert_array_equal(out[0], drawn[3])
    np.testing.assert_array_equal(out[1], Draw(seed=5).latent(shape))


def test_a_variation_keeps_a_gaussian_size_and_stays_near_its_origin() -> None:
    origin = Draw(seed=7)
    shape = (4096,)
    near = Draw(seed=8, near=origin, spread=0.3).latent(shape)
    far = Draw(seed=8, near=origin, spread=1.0).latent(shape)
    assert abs(np.std(near) - 1.0) < 0.05
    correlation = float(np.corrcoef(near, origin.latent(shape))[0, 1])
    assert 0.9 < correlation < 0.99  # sqrt(1 - 0.3^2) = 0.954
    np.testing.assert_array_equal(far, Draw(seed=8).latent(shape))  # spread 1 is a fresh draw
    assert latent_of(shape, 7, 0, Variations()) is not None


def test_choices_follow_a_draws_origin() -> None:
    plain = item_choices(31, 6, Variations(), 9)
    np.testing.assert_array_equal(plain, np.random.default_rng([31, 1]).integers(0, 9, size=6))
    draws = [Draw(seed=31, index=4), Draw(seed=2, near=Draw(seed=31, index=1), spread=0.5)]
    chosen = item_choices(777, 2, Variations.model_validate({"draws": draws}, context={"count": 2}), 9)
    assert chosen.tolist() == [plain[4], plain[1]]


def test_child_seeds_are_exact_json_safe_integers_and_repeat() -> None:
    seeds = child_seeds(2**64 - 1, 300)
    assert seeds == child_seeds(2**64 - 1, 300) and len(set(seeds)) == 300
    assert all(0 <= s < 2**63 for s in seeds)


def test_the_reward_model_learns_a_planted_taste_from_pairs() -> None:
    rng = np.random.default_rng(0)
    taste = rng.normal(size=12)
    x = rng.normal(size=(200, 12)) * rng.uniform(0.5, 3.0, size=12) + 4.0  # unscaled features
    utility = ((x - 4.0) / x.std(axis=0)) @ taste
    noisy = utility + rng.normal(scale=0.5 * utility.std(), size=200)
    pairs, gaps = preference_pairs(np.sign(noisy[:100] - np.median(noisy[:100])).tolist(), 5000, rng)
    model = RewardModel.fit(x[:100], pairs, gaps)
    held = np.array([(i, j) if utility[i] > utility[j] else (j, i)
                     for i, j in rng.integers(100, 200, size=(300, 2)) if i != j])
    assert model.accuracy(x, held) > 0.8


def test_typical_draws_stand_in_only_while_ratings_order_too_little() -> None:
    rng = np.random.default_rng(1)
    liked = rng.normal(loc=1.0, size=(5, 3))
    typical = rng.normal(size=(20, 3))
    model, pairs = fit(liked, [1.0] * 5, typical)  # only likes: they are ordered against typical draws
    assert pairs == 100 and model.score(np.ones((1, 3)))[0] > model.score(-np.ones((1, 3)))[0]
    _, pairs = fit(liked, [1.0, 1.0, -1.0, -1.0, 0.5], typical)  # 8 ordered pairs among them: not enough
    assert pairs > 8
    _, pairs = fit(np.vstack([liked, liked]), [1.0] * 5 + [-1.0] * 5, typical)  # 25: enough alone
    assert pairs == 25


def test_the_floor_keeps_near_copies_apart_and_fills_up_when_it_must() -> None:
    x = np.array([[0.0, 0.0], [0.01, 0.0], [5.0, 0.0], [0.0, 5.0]])
    scores = np.array([4.0, 3.9, 1.0, 0.5])
    assert select(scores, x, 2, floor=1.0) == [0, 2]  # the near copy of the best is passed over
    assert select(scores, x, 4, floor=100.0) == [0, 1, 2, 3]  # nothing is that far: the best fill up


def test_image_and_mesh_features_see_brightness_colour_and_shape() -> None:
    dark, bright = np.full((16, 16), 0.2, np.float32), np.full((16, 16), 0.8, np.float32)
    assert image_features(bright)[6] > image_features(dark)[6]  # brightness
    red = np.zeros((8, 8, 4), np.uint8)
    red[..., 0], red[..., 3] = 255, 255
    half = red.copy()
    half[:, 4:, 3] = 0
    assert image_features(red)[0] == pytest.approx(1.0) and image_features(half)[10] == pytest.approx(0.5)
    tall = np.array([[0, 0, 0], [0.1, 0, 0], [0, 1, 0], [0, 0, 0.1], [0.1, 1, 0.1]])
    assert mesh_features(tall)[1] == pytest.approx(1.0) and mesh_features(tall)[0] == pytest.approx(0.1)
    assert media_features(museforge.Media("audio", np.zeros(4), 0)) is None


class Plain(museforge.Variations):
    pass


def plain_generate(ctx: museforge.GenerationContext, params: Plain, seed: int,
                   count: int) -> Iterator[museforge.Media]:
    for index, z in latents((4,), seed, count, params):
        yield museforge.Media("image", np.full((2, 2), float(abs(z[0])) % 1, np.float32), index)


class UndeclaredPlugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.plain", "image", Plain, plain_generate, ("png",)))
        register(museforge.Generator("test.shaped", "image", Plain, plain_generate, ("png",),
                                     latent_shape=lambda params: (4,)))


def test_the_engine_refuses_preference_it_cannot_answer() -> None:
    engine = inline_engine(("undeclared", UndeclaredPlugin())).start()
    try:
        with pytest.raises(InvalidArgument) as caught:
            engine.prepare("test.plain", {"preference": "ann"}, 1, 1, "")
        assert "does not declare the shape" in caught.value.violations[0].description
        with pytest.raises(InvalidArgument) as caught:  # no feedback store plugged in (--local)
            engine.prepare("test.shaped", {"preference": "ann"}, 1, 1, "")
        assert caught.value.violations[0].field == "parameters.preference"
        assert "no feedback store" in caught.value.violations[0].description
        # Draws work without any store.
        assert engine.generate("test.shaped", {"draws": [{"seed": "3"}]}, seed=1)
    finally:
        engine.close()

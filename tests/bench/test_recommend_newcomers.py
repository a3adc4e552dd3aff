"""bench.recommend's held-out users on a small simulated world: what training knows of them, and
what a brand-new user is offered."""

from __future__ import annotations

import pytest

from bench.raters import World, simulate
from bench.recommend import SPLIT, K
from bench.recommend_newcomers import (
    FOLD_IN_SLATES,
    NAMES,
    held_out_users,
    hold_out,
    newcomer_quality,
    rankers,
)
from museforge.feedback.interactions import interactions

SEED = 5


@pytest.fixture(scope="module")
def world() -> World:
    return simulate(artifacts=240, users=40, seed=SEED)


def test_held_out_users_are_a_seeded_share(world: World) -> None:
    users = held_out_users(world, SEED)
    assert len(users) == 6 and users == held_out_users(world, SEED)  # 15% of 40, the same each run
    assert users != held_out_users(world, SEED + 1)


def test_training_knows_held_out_users_by_their_last_slates_before_the_split_only(world: World) -> None:
    newcomers = hold_out(world, SEED)
    held, cut = set(newcomers.users), world.rounds * SPLIT
    everyone = interactions(e for e in world.events if e.created < cut)
    assert set(newcomers.train) == {FOLD_IN_SLATES, 0}
    for slates, found in newcomers.train.items():
        for user in everyone.weights.keys() - held:  # the others keep every training event
            assert found.weights[user] == everyone.weights[user]
        events = sum(e.user not in held and e.created < cut for e in world.events)
        for user in held:
            rounds = sorted({e.created for e in world.events if e.user == user and e.created < cut})
            assert len(rounds) > FOLD_IN_SLATES  # so leaving events out is tested
            last = set(rounds[len(rounds) - slates:]) if slates else set()
            own = [e for e in world.events if e.user == user and e.created in last]
            assert found.weights.get(user, {}) == interactions(own).weights.get(user, {})
            events += len(own)
        assert found.events == events
    assert set(newcomers.test.weights) <= held
    assert newcomers.test.events == sum(e.user in held and e.created >= cut for e in world.events)


def test_a_brand_new_user_is_offered_what_most_popular_offers(world: World) -> None:
    newcomers = hold_out(world, SEED)
    found = newcomers.train[0]
    ours, popular, knn = (rankers(found)[name] for name in NAMES)
    likes = {sha: sum(row.get(sha, 0.0) > 0 for row in found.weights.values()) for sha in found.items}
    candidates = list(found.items)  # training names none of their events
    for user in newcomers.users:
        top = ours(user, candidates)
        # The same ranking; among artifacts liked equally often the order may differ.
        assert [likes[s] for s in top] == [likes[s] for s in popular(user, candidates)]
        assert knn(user, candidates) == sorted(candidates)[:K]  # no neighbours to go on
    quality = newcomer_quality(world, found, newcomers.test, newcomers.users, ours)
    assert 0 < quality.users <= len(newcomers.users)


def test_the_fold_in_makes_recommendations_personal(world: World) -> None:
    newcomers = hold_out(world, SEED)
    found = newcomers.train[FOLD_IN_SLATES]
    ours, popular, _ = (rankers(found)[name] for name in NAMES)
    differ = 0
    for user in newcomers.users:
        candidates = [s for s in found.items if s not in found.seen(user)]
        assert not found.seen(user) & set(ours(user, candidates))  # what they met is not offered
        differ += found.liked(user) != {} and ours(user, candidates) != popular(user, candidates)
    assert differ

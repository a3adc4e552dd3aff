"""The recommender's two terms beside ALS: an artifact's share of likes among those who met it,
and each user's fixed noise (museforge.feedback.quality_and_variety), alone and in a fitted model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from museforge.feedback.interactions import Interactions, Item
from museforge.feedback.quality_and_variety import (
    QUALITY_WEIGHT,
    VARIETY,
    artifact_keys,
    liked_share,
    standardised,
    user_noise,
    varied,
    with_quality,
)
from museforge.feedback.recommender import Recommender


def test_a_share_of_meetings_not_a_count_of_likes() -> None:
    met = np.array([4.0, 40.0, 1.0, 10.0, 0.0, 15.0])
    liked = np.array([4.0, 4.0, 1.0, 8.0, 0.0, 7.0])  # 24 likes of 70 meetings overall
    share = liked_share(met, liked)
    assert share[0] > share[1]  # liked by all four who met it, against four of forty
    assert share[3] > share[2]  # eight of ten says more than one of one
    overall = liked.sum() / met.sum()
    level = liked_share(np.append(met, 14.0), np.append(liked, 14.0 * overall))
    assert level[4] == pytest.approx(level[6])  # nobody met it: the overall share, as one met at that rate
    assert share.mean() == pytest.approx(0.0, abs=1e-6) and share.std() == pytest.approx(1.0, abs=1e-5)
    assert not standardised(np.ones(3)).any()


def test_quality_enters_at_its_weight_of_the_users_spread() -> None:
    scores = np.array([0.0, 1.0, 2.0, 3.0], np.float32)
    quality = np.array([1.0, 0.0, 0.0, -1.0], np.float32)
    added = with_quality(scores, quality) - scores
    assert added == pytest.approx(QUALITY_WEIGHT * float(scores.std()) * quality)


def test_a_users_noise_is_fixed_by_the_user_and_the_artifact_alone() -> None:
    keys = artifact_keys([f"artifact {i}" for i in range(4000)])
    ann = user_noise("ann", keys)
    assert np.array_equal(ann, user_noise("ann", keys))
    assert np.array_equal(ann[:20], user_noise("ann", keys[:20]))  # the catalogue grew
    order = np.random.default_rng(0).permutation(len(keys))
    assert np.array_equal(ann[order], user_noise("ann", keys[order]))  # or came in another order
    assert not np.allclose(ann, user_noise("bob", keys))
    assert abs(ann.mean()) < 0.06 and abs(ann.std() - 1.0) < 0.06  # standard normal, near enough
    scores = np.linspace(0.0, 1.0, 4000).astype(np.float32)
    assert (varied(scores, "ann", keys) - scores).std() == pytest.approx(VARIETY * scores.std(), rel=0.1)


def test_forgetting_a_user_leaves_everyone_elses_noise_on_the_same_artifacts() -> None:
    found, without = Interactions(), Interactions()
    for u in range(5):
        for n in range(u * 4, u * 4 + 6):
            found.add(f"u{u}", tile(n, "green"), 1.0)
            if u:  # u0, the first to meet artifacts, is forgotten: every column moves
                without.add(f"u{u}", tile(n, "green"), 1.0)
    before, after = Recommender(found), Recommender(without)
    shared = [sha for sha in after.index]
    assert [before.index[sha] for sha in shared] != [after.index[sha] for sha in shared]
    noise_before, noise_after = user_noise("u3", before.noise_keys), user_noise("u3", after.noise_keys)
    for sha in shared:
        assert noise_before[before.index[sha]] == noise_after[after.index[sha]]


def tile(n: int, look: str) -> Item:
    return Item(f"{n:064x}", "image.tiles", "", "3", n + 1, {"look": look, "kind": "floor"})


def test_the_artifact_most_who_met_it_liked_ranks_above_one_more_users_liked() -> None:
    # Two green tiles: nine of the ten users who met the first liked it, ten of the forty who
    # met the second. A newcomer who liked one other green tile is offered the first first.
    found = Interactions()
    good, shown_more = tile(1, "green"), tile(2, "green")
    for u in range(40):
        found.add(f"u{u}", shown_more, 1.0 if u < 10 else -1.0)
        if u >= 30:
            found.add(f"u{u}", good, 1.0 if u < 39 else -1.0)
        found.add(f"u{u}", tile(10 + u, "red"), 1.0)
    found.add("ann", tile(90, "green"), 1.0)
    model = Recommender(found)
    assert model.popularity[model.index[shown_more.sha256]] > model.popularity[model.index[good.sha256]]
    offered = [s.item.sha256 for s in model.artifacts("ann", 50) if s.item is not None]
    assert offered.index(good.sha256) < offered.index(shown_more.sha256)


def test_alike_users_get_lists_of_their_own_and_the_same_list_each_call() -> None:
    found = Interactions()
    pool = [tile(n, "green") for n in range(40)]
    for u in range(6):
        for item in pool[u * 5:u * 5 + 5]:
            found.add(f"u{u}", item, 1.0)
    for twin in ("ann", "bob"):  # the same events
        found.add(twin, tile(100, "green"), 1.0)
    model = Recommender(found)
    first = [s.item for s in model.artifacts("ann", 5)]
    assert first == [s.item for s in model.artifacts("ann", 5)]
    assert first != [s.item for s in model.artifacts("bob", 5)]
    scores = [s.score for s in model.artifacts("ann", 5)]
    assert scores == sorted(scores, reverse=True)


def test_one_draw_in_two_formats_is_met_and_liked_once_per_user() -> None:
    found = Interactions()
    png = Item("a" * 64, "image.tiles", "", "3", 7, {"look": "green"})
    webp = Item("b" * 64, "image.tiles", "", "3", 7, {"look": "green"})  # the same draw
    single = Item("c" * 64, "image.tiles", "", "3", 8, {"look": "green"})
    found.add("ann", png, 1.0)
    found.add("ann", webp, 1.0)  # both files: one meeting, one like
    found.add("bob", png, -1.0)
    found.add("ann", single, 1.0)
    found.add("bob", single, -1.0)
    model = Recommender(found)
    columns = [model.index[item.sha256] for item in (png, webp, single)]
    quality = model.quality[columns]
    assert quality[0] == quality[1] == pytest.approx(quality[2])  # one like of two meetings each
    keys = model.noise_keys[columns]
    assert keys[0] == keys[1] != keys[2]  # one draw, one noise: three files get no more chances


def test_no_artifacts_at_all_is_no_warning() -> None:
    empty = np.zeros(0, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert liked_share(empty, empty).size == 0
        assert with_quality(empty, empty).size == 0
        assert varied(empty, "ann", np.zeros(0, np.uint64)).size == 0

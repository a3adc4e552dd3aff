"""bench.recommend's test period drawn again: the same world before the split, fresh chance after it,
and the NDCG@10 each run gives the same top 10s."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.raters import World, simulate
from bench.recommend import SPLIT, ndcg, popular_ranker, split
from bench.recommend_periods import period_ndcg, ratio, redrawn, report, top_lists
from museforge.feedback.interactions import Interactions, Item
from museforge.feedback.store import StoredEvent

WORLD: dict[str, Any] = {"artifacts": 240, "users": 40, "seed": 5}


@pytest.fixture(scope="module")
def world() -> World:
    return simulate(**WORLD)


def answers(events: list[StoredEvent]) -> list[tuple[str, int, str, float]]:
    return [(e.user, e.kind, e.body["artifact"]["sha256"], e.created) for e in events]


def test_a_redrawn_run_keeps_every_event_before_the_split_and_draws_the_rest_again(world: World) -> None:
    cut = int(world.rounds * SPLIT)
    before = answers([e for e in world.events if e.created < cut])
    runs = [simulate(**WORLD, redraw=(cut, stream)).events for stream in (0, 1, 0)]
    for events in runs:
        assert answers([e for e in events if e.created < cut]) == before
    after = [answers([e for e in events if e.created >= cut]) for events in runs]
    assert after[0] == after[2]  # a stream is reproducible
    assert after[0] != after[1] and after[0] != answers([e for e in world.events if e.created >= cut])
    with pytest.raises(ValueError, match="redraw round 40"):
        simulate(**WORLD, redraw=(40, 0))  # past the last round: nothing would be drawn again


def test_redrawn_gives_only_the_test_period_of_each_run(world: World) -> None:
    parts = split(world)
    cut = int(world.rounds * SPLIT)
    periods = redrawn(WORLD, parts.train, cut, 3)
    assert len(periods.runs) == 3 and all(e.created >= cut for run in periods.runs for e in run)
    some = sorted(world.tastes)[:5]
    assert all(set(test.weights) <= set(some) for test in periods.tests(some))


def item(sha: str) -> Item:
    return Item(sha, "image.tiles", "", "1", 1, {})


def test_period_ndcg_scores_only_what_training_named_and_the_user_had_not_met() -> None:
    train, test = Interactions(), Interactions()
    for sha in "abcd":
        train.add("other", item(sha), 1.0)
    train.add("ann", item("a"), 1.0)  # ann met a before the split
    for sha, weight in (("a", 1.0), ("c", 1.0), ("d", -1.0), ("new", 1.0)):
        test.add("ann", item(sha), weight)
    test.add("bob", item("d"), -1.0)  # bob liked nothing later: not judged
    tops = top_lists(train, ["ann", "bob"], popular_ranker(train))
    assert tops["ann"][0][0] == "b"  # a is met; the others are liked once each, by name
    expected = ndcg(tops["ann"][0], {"c"})
    assert expected == pytest.approx(1.0 / np.log2(3))  # c second, the only one that counts
    assert period_ndcg(tops, train, test) == pytest.approx(expected)
    assert period_ndcg(tops, train, Interactions()) == 0.0


def test_the_table_gives_the_mean_ratio_and_a_run_s_spread(capsys: pytest.CaptureFixture[str]) -> None:
    found = {"ours": np.array([0.2, 0.4, 0.0]), "most popular": np.array([0.1, 0.2, 0.1])}
    assert ratio(found["ours"], found["most popular"]) == pytest.approx(1.5)
    assert ratio(found["ours"], np.zeros(3)) == float("inf")
    report("label", {"ours": 0.25, "most popular": 0.125}, found, "most popular")
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("ours"))
    assert row.split()[1:5] == ["0.250", "0.2000", "1.50", "0.20"]  # spread of 2, 2, 0

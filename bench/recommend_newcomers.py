"""Held-out users for ``python -m bench.recommend``: raters whom training knows by a few slates at most.

A seeded draw of its own (the world's draws stay as they are) holds out ``HOLDOUT_SHARE`` of
the raters. Of their events before the split only their last ``FOLD_IN_SLATES`` answered
slates train (the fold-in: what a newcomer gives in their first visits, just before their
recommendations are judged); each recommender is fitted on the other raters' events before the
split plus those, and judged on the held-out raters' events from the split on, with the bench's
candidate rule (what the training events name that the user has not met in them). Beside it,
the same raters with no events at all (brand new: museforge answers them with popularity).

The last slates before the split rather than the first: with the first, a held-out rater would
be someone who rated a few of the catalogue's oldest artifacts and then nothing for 25 rounds,
not a newcomer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from museforge.feedback.interactions import Interactions, interactions
from museforge.feedback.recommender import Recommender
from museforge.feedback.store import StoredEvent

from .raters import GENERATORS, World
from .recommend import (
    SPLIT,
    TRUTH_SHARE,
    K,
    Quality,
    Ranker,
    knn_ranker,
    museforge_ranker,
    ndcg,
    popular_ranker,
)
from .recommend_metrics import liked_later
from .recommend_periods import Periods, judge, ratio
from .report import table

HOLDOUT_SHARE = 0.15
FOLD_IN_SLATES = 3
FOLDS = {f"last {FOLD_IN_SLATES} slates": FOLD_IN_SLATES, "none (brand new)": 0}
NAMES = ("museforge (ALS + features)", "most popular", "item-kNN (cosine, 50 neighbours)")

Verdict = tuple[str, float, float | None]


@dataclass
class Newcomers:
    users: list[str]  # held out, in name order
    train: dict[int, Interactions]  # slates of fold-in -> the others' training events plus those
    test: Interactions  # the held-out users' events from the split on


def held_out_users(world: World, seed: int, share: float = HOLDOUT_SHARE) -> list[str]:
    names = sorted(world.tastes)
    rng = np.random.default_rng([seed, 1])  # not the world's own stream
    return sorted(rng.choice(names, max(1, round(len(names) * share)), replace=False).tolist())


def fold_in(events: Iterable[StoredEvent], users: set[str], slates: int, cut: float) -> set[int]:
    """Seq numbers of each user's last ``slates`` answered slates before ``cut``: a rater meets
    at most one slate a round, so a slate is a (user, round) pair."""
    rounds: dict[str, set[float]] = {}
    for event in events:
        if event.user in users and event.created < cut:
            rounds.setdefault(event.user, set()).add(event.created)
    last = {user: set(sorted(found)[-slates:]) if slates else set() for user, found in rounds.items()}
    return {e.seq for e in events if e.user in users and e.created in last.get(e.user, set())}


def hold_out(world: World, seed: int, folds: Iterable[int] = FOLDS.values()) -> Newcomers:
    users = held_out_users(world, seed)
    held, cut = set(users), world.rounds * SPLIT
    others = {e.seq for e in world.events if e.user not in held and e.created < cut}
    train = {}
    for slates in folds:
        kept = others | fold_in(world.events, held, slates, cut)
        train[slates] = interactions(e for e in world.events if e.seq in kept)  # in time order
    test = interactions(e for e in world.events if e.user in held and e.created >= cut)
    return Newcomers(users, train, test)


def rankers(found: Interactions, looks: Mapping[str, np.ndarray] | None = None) -> dict[str, Ranker]:
    """The three of bench.recommend, fitted on ``found``."""
    model = Recommender(found, GENERATORS, looks=looks)
    return dict(zip(NAMES, (museforge_ranker(model), popular_ranker(found), knn_ranker(model)), strict=True))


def newcomer_quality(world: World, found: Interactions, test: Interactions, users: list[str],
                     rank: Ranker) -> Quality:
    """bench.recommend's quality for ``users``, who need not have liked anything in ``found``."""
    known = list(found.items)
    future, truth, shown = [], [], set()
    for user in users:
        seen = found.seen(user)
        later = liked_later(test, found, user, seen)
        if not later:
            continue
        candidates = [s for s in known if s not in seen]
        top = rank(user, candidates)
        shown.update(top)
        taste = world.tastes[user]
        utility = {a.sha256: taste.utility(a) for a in world.artifacts}
        ordered = sorted(candidates, key=lambda s: -utility[s])
        future.append(ndcg(top, later))
        truth.append(ndcg(top, set(ordered[:max(1, int(len(ordered) * TRUTH_SHARE))])))
    coverage = len(shown) / max(1, len(known))
    return Quality(float(np.mean(future)) if future else 0.0, float(np.mean(truth)) if truth else 0.0,
                   coverage, len(future))


def report(world: World, seed: int, periods: Periods,
           looks: Mapping[str, np.ndarray] | None = None) -> list[Verdict]:
    """Prints the held-out users' tables (one run, then every run of ``periods``); its targets, in
    bench.recommend's form."""
    newcomers = hold_out(world, seed)
    rows: dict[tuple[str, str], Quality] = {}
    chosen: dict[str, dict[str, Ranker]] = {}
    for label, slates in FOLDS.items():
        found = newcomers.train[slates]
        chosen[label] = rankers(found, looks)
        for name, rank in chosen[label].items():
            rows[(name, label)] = newcomer_quality(world, found, newcomers.test, newcomers.users, rank)
    print(table([[name, label, f"{q.ndcg_future:.3f}", f"{q.ndcg_truth:.3f}", f"{q.coverage:.2f}",
                  str(q.users)] for (name, label), q in rows.items()],
                ["held-out users", "fold-in", "NDCG@10 held-out", "NDCG@10 hidden truth",
                 "coverage@10", "users"], {2, 3, 4, 5}))
    print(f"{len(newcomers.users)} of {len(world.tastes)} raters held out (a seeded draw): training knows "
          f"them by their last {FOLD_IN_SLATES} answered slates before round {int(world.rounds * SPLIT)}, "
          f"or not at all; coverage@10 is over their top {K}s only.")
    runs = {}
    for label, slates in FOLDS.items():
        print()
        runs[label] = judge(periods, newcomers.train[slates], newcomers.users, chosen[label],
                            {name: rows[(name, label)].ndcg_future for name in NAMES},
                            f"held-out users, {label}", NAMES[1])
    fold = next(iter(FOLDS))
    ours, popular, knn = (runs[fold][name] for name in NAMES)
    expect = f"held-out users, {fold}, expected over {len(periods.runs)} runs"
    return [(f"NDCG@10 ({expect}) >= 1.5x most popular", ratio(ours, popular), 1.5),
            (f"NDCG@10 ({expect}) >= 1.1x item-kNN", ratio(ours, knn), 1.1)]


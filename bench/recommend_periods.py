"""Held-out NDCG@10 as a ranking can expect it, over many runs of the test period (bench.recommend).

The events after the split are one run of chance: which artifacts the popular half of a slate
happens to show each user, and how the noisy answers fall. With about 280 users and most
top 10s holding none of what a user liked later, one run moves a ratio between two rankings a
long way (on seeds 0 and 1 the ceiling row read 1.67x and 0.97x most popular in one run each).
Here the world and every event before the split stay as they are (checked), and the rounds
from the split on are drawn again ``count`` times from random streams of their own
(``raters.simulate(redraw=...)``). Each ranking's top 10s are fixed by the training events, so
each run judges the same lists; the mean over runs is what the ranking can expect, and the
spread of the per-run ratio says how far one run may stray.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from museforge.feedback.interactions import Interactions, interactions
from museforge.feedback.store import StoredEvent

from .raters import simulate
from .recommend_metrics import liked_later, ndcg
from .report import table

PERIODS = 40

TopLists = dict[str, tuple[list[str], set[str]]]  # user -> (their top 10, what they had met)


@dataclass
class Periods:
    """The events from ``cut`` on of ``count`` fresh runs of the same world's test period."""

    cut: int
    runs: list[list[StoredEvent]]

    def tests(self, users: Iterable[str] | None = None) -> list[Interactions]:
        kept = None if users is None else set(users)
        return [interactions(e for e in run if kept is None or e.user in kept) for run in self.runs]


def redrawn(world: Mapping[str, Any], train: Interactions, cut: int, count: int = PERIODS) -> Periods:
    """``count`` runs of the rounds from ``cut`` on, of the world ``simulate(**world)`` makes."""
    runs = []
    for stream in range(count):
        events = simulate(**world, redraw=(cut, stream)).events
        if interactions(e for e in events if e.created < cut).weights != train.weights:
            raise RuntimeError("a redrawn test period changed the training events")
        runs.append([e for e in events if e.created >= cut])
    return Periods(cut, runs)


def top_lists(train: Interactions, users: Iterable[str], rank: Any) -> TopLists:
    """Each user's top 10 among what the training events name that they have not met."""
    known = list(train.items)
    found: TopLists = {}
    for user in users:
        seen = train.seen(user)
        found[user] = (rank(user, [s for s in known if s not in seen]), seen)
    return found


def period_ndcg(tops: TopLists, train: Interactions, test: Interactions) -> float:
    """Mean NDCG@10 over the users who liked something in ``test`` that training named and they
    had not met (bench.recommend's rule); 0 when nobody did."""
    found = []
    for user, (top, seen) in tops.items():
        later = liked_later(test, train, user, seen)
        if later:
            found.append(ndcg(top, later))
    return float(np.mean(found)) if found else 0.0


def expected(tops: Mapping[str, TopLists], train: Interactions,
             tests: list[Interactions]) -> dict[str, np.ndarray]:
    """Each ranking's NDCG@10 in every run, in run order."""
    return {name: np.array([period_ndcg(lists, train, test) for test in tests])
            for name, lists in tops.items()}


def ratio(ours: np.ndarray, other: np.ndarray) -> float:
    """Mean over mean; inf over a ranking that found nothing in any run."""
    return float(ours.mean() / other.mean()) if other.mean() else float("inf")


def report(label: str, single: Mapping[str, float], found: Mapping[str, np.ndarray], reference: str) -> None:
    """A table: one run's figure, the expected one, and both over ``reference``'s."""
    base = found[reference]
    rows = []
    for name, runs in found.items():
        per_run = runs / np.where(base > 0, base, np.nan)
        low, high = np.nanpercentile(per_run, [5, 95]) if np.isfinite(per_run).any() else (np.nan, np.nan)
        rows.append([name, f"{single[name]:.3f}", f"{runs.mean():.4f}", f"{ratio(runs, base):.2f}",
                     f"{low:.2f} to {high:.2f}"])
    print(table(rows, [label, "NDCG@10 held-out, this run", f"expected ({len(base)} runs)",
                       f"x {reference}", "one run's ratio, 5-95%"], {1, 2, 3, 4}))


def judge(periods: Periods, train: Interactions, users: Iterable[str], rankers: Mapping[str, Any],
          single: Mapping[str, float], label: str, reference: str) -> dict[str, np.ndarray]:
    """Every ranking's top 10s for ``users``, judged in each run of ``periods``; the table printed."""
    chosen = list(users)
    tests = periods.tests(chosen)
    found = expected({name: top_lists(train, chosen, rank) for name, rank in rankers.items()}, train, tests)
    report(label, single, found, reference)
    return found

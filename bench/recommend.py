"""``python -m bench.recommend``: how well Recommend serves simulated raters, beside two baselines.

Raters with hidden tastes (bench.raters) rate, pick, keep and are shown artifacts over 40
rounds. The events before round 32 train; what follows is held out (a time-ordered split).
Side by side in one run, on the same training events and the same candidates (what the
training events name that the user has not met):

- museforge's recommender (museforge.feedback.recommender: implicit's ALS with features
  for cold start, and each user's liking for what artifacts look like), the code the server
  runs, given the catalogue rendered and described by the server's own code
  (bench.raters_looks), and the same without those looks;
- most popular: the artifacts most users liked in training;
- item-kNN: implicit's cosine item-item neighbours on the same matrix.

Figures, per user with something liked before and after the split, averaged:

- NDCG@10 against what the user liked after the split (held-out events);
- NDCG@10 against the hidden truth: the 5% of candidates with the user's highest utility;
- coverage@10: the share of candidates that appear in anyone's top 10;
- cold-start AUC: artifacts released after the split, known only by their provenance (as
  a "shown" event would make them known), ranked for each user; AUC of telling the
  user's top 30% (hidden utility) from the rest.

Beside them, a ceiling row that no recommender can have: it knows each user's hidden utility
and how many users met each artifact before the split, and ranks by (how often it was met) x
(the chance of being liked). Held-out events are what users were shown, so this is about what a
ranking that knew every taste would score against them (a reference, not a strict bound).

The held-out events are one run of chance, so the same top 10s are then judged again over
``--periods`` fresh runs of the rounds after the split (bench.recommend_periods): the expected
NDCG@10 of each ranking, which the held-out targets read.

With ``--looks W`` the raters' tastes also weigh what each artifact looks like, as the steering
bench's judges measure it on the rendered file (the catalogue and every other liking unchanged).

Then the same world with a randomised test period (``raters.simulate(random_from=...)``; the
training events are the same, checked): after the split every slate is drawn uniformly, as in
the Yahoo! R3 and Coat data sets, and each recommender ranks each user's own held-out
artifacts (NDCG@10 of what they liked among what they were shown): taste without exposure.

Then held-out users (bench.recommend_newcomers): 15% of the raters whom training knows only by
their last three answered slates before the split, or not at all, judged on what follows.

Then latency through a real ``museforge serve``: a world of about 10,000 artifacts recorded over
gRPC, the fit it takes, and p50/p99 of ``Recommend`` (artifacts, k=10) for random users.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse

from museforge.feedback.interactions import Interactions, interactions, item_of
from museforge.feedback.recommender import Recommender

from .raters import GENERATORS, NOISE, World, simulate
from .raters_looks import described, engine, judged
from .recommend_latency import latency, progress
from .recommend_metrics import K, liked_later, ndcg
from .recommend_periods import PERIODS, judge, ratio, redrawn
from .report import table

SPLIT = 0.8
TRUTH_SHARE = 0.05
COLD_TOP = 0.3
MUSEFORGE = "museforge (ALS + features)"
PLAIN = "museforge without looks"
KNN = "item-kNN (cosine, 50 neighbours)"
CEILING = "ceiling: hidden utility x exposure"


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Mann-Whitney AUC (ties count half); None when one class is missing."""
    positive, negative = scores[labels], scores[~labels]
    if not len(positive) or not len(negative):
        return None
    above, tied = positive[:, None] > negative[None, :], positive[:, None] == negative[None, :]
    wins = above.sum() + 0.5 * tied.sum()
    return float(wins / (len(positive) * len(negative)))


@dataclass
class Split:
    train: Interactions
    test: Interactions
    cold: list[str]  # artifacts released after the split that held-out events name


def split(world: World) -> Split:
    cut = world.rounds * SPLIT
    train = interactions(e for e in world.events if e.created < cut)
    test = interactions(e for e in world.events if e.created >= cut)
    cold = [sha for sha in test.items if sha not in train.items]
    return Split(train, test, cold)


Ranker = Callable[[str, list[str]], list[str]]  # (user, candidates) -> the top K, best first


def popular_ranker(train: Interactions) -> Ranker:
    likes: dict[str, int] = {}
    for row in train.weights.values():
        for sha, weight in row.items():
            if weight > 0:
                likes[sha] = likes.get(sha, 0) + 1
    return lambda user, candidates: sorted(candidates, key=lambda s: (-likes.get(s, 0), s))[:K]


def knn_ranker(model: Recommender) -> Ranker:
    from implicit.nearest_neighbours import CosineRecommender

    rows, columns, values = [], [], []
    for user, row in model.found.weights.items():
        for sha, weight in row.items():
            if weight > 0:
                rows.append(model.users[user])
                columns.append(model.index[sha])
                values.append(weight)
    matrix = scipy.sparse.csr_matrix((values, (rows, columns)), (len(model.users), len(model.items)),
                                     dtype=np.float32)
    knn = CosineRecommender(K=50, num_threads=1)
    with warnings.catch_warnings():  # it transposes the CSR matrix itself, then says it had to convert
        warnings.simplefilter("ignore")
        knn.fit(matrix, show_progress=False)

    def rank(user: str, candidates: list[str]) -> list[str]:
        if user not in model.users:  # no events: no neighbours to score by, so name order
            return sorted(candidates)[:K]
        row = model.users[user]
        ids, scores = knn.recommend(row, matrix[row].tocsr(), N=len(model.items),
                                    filter_already_liked_items=False)
        score = dict(zip(ids.tolist(), scores.tolist(), strict=True))
        return sorted(candidates, key=lambda s: (-score.get(model.index[s], -np.inf), s))[:K]
    return rank


def museforge_ranker(model: Recommender) -> Ranker:
    return lambda user, candidates: [s.item.sha256 for s in model.artifacts(user, K) if s.item is not None]


def scores_ranker(model: Recommender) -> Ranker:
    """The model's scores (popularity for a user with no likes, as Recommend does) over any candidates."""
    def rank(user: str, candidates: list[str]) -> list[str]:
        scores = model.user_scores(user)
        ranked = model.popularity if scores is None else scores
        return sorted(candidates, key=lambda s: (-float(ranked[model.index[s]]), s))[:K]
    return rank


def ceiling_ranker(world: World, parts: Split) -> Ranker:
    """How many users met it before the split (exposure, a stand-in for being shown again) x the
    chance of being liked (the hidden utility through the raters' noise, above a thumbs-up's
    1.0): not a recommender."""
    shown: dict[str, int] = {}
    for row in parts.train.weights.values():
        for sha in row:
            shown[sha] = shown.get(sha, 0) + 1
    by_sha = {a.sha256: a for a in world.artifacts}

    def rank(user: str, candidates: list[str]) -> list[str]:
        taste = world.tastes[user]

        def score(sha: str) -> float:
            liked = 1.0 / (1.0 + np.exp(-(taste.utility(by_sha[sha]) - 1.0) / NOISE))
            return shown.get(sha, 0) * liked
        return sorted(candidates, key=lambda s: (-score(s), s))[:K]
    return rank


def own_items_ndcg(parts: Split, rank: Ranker) -> tuple[float, int]:
    """Mean NDCG@10 of each user's held-out artifacts (known before the split, not seen then)
    ranked, against which of them they liked; users who liked all or none are left out."""
    found = []
    for user in parts.train.weights:
        if not parts.train.liked(user):
            continue
        seen = parts.train.seen(user)
        later = parts.test.weights.get(user, {})
        met = [s for s in later if s in parts.train.items and s not in seen]
        liked = {s for s in met if later[s] > 0}
        if liked and len(liked) < len(met):
            found.append(ndcg(rank(user, met), liked))
    return float(np.mean(found)), len(found)


@dataclass
class Quality:
    ndcg_future: float
    ndcg_truth: float
    coverage: float
    users: int


def quality(world: World, parts: Split, rank: Ranker) -> Quality:
    known = list(parts.train.items)
    future, truth, shown = [], [], set()
    for user in parts.train.weights:
        seen = parts.train.seen(user)
        later = liked_later(parts.test, parts.train, user, seen)
        if not parts.train.liked(user) or not later:
            continue
        candidates = [s for s in known if s not in seen]
        top = rank(user, candidates)
        shown.update(top)
        taste = world.tastes[user]
        utility = {a.sha256: taste.utility(a) for a in world.artifacts}
        ordered = sorted(candidates, key=lambda s: -utility[s])
        best = set(ordered[:max(1, int(len(ordered) * TRUTH_SHARE))])
        future.append(ndcg(top, later))
        truth.append(ndcg(top, best))
    coverage = len(shown) / max(1, len(known))
    return Quality(float(np.mean(future)), float(np.mean(truth)), coverage, len(future))


def cold_auc(world: World, parts: Split, looks: Mapping[str, np.ndarray] | None = None) -> float:
    """Mean per-user AUC over artifacts nobody rated in training, known by their provenance only."""
    known = Interactions(weights=parts.train.weights, items=dict(parts.train.items),
                         events=parts.train.events)
    for sha in parts.cold:
        known.items[sha] = item_of(parts.test.items[sha].ref())
    model = Recommender(known, GENERATORS, looks=looks)
    columns = [model.index[sha] for sha in parts.cold]
    by_sha = {a.sha256: a for a in world.artifacts}
    found = []
    for user in parts.train.weights:
        scores = model.user_scores(user)
        if scores is None:
            continue
        utility = np.array([world.tastes[user].utility(by_sha[sha]) for sha in parts.cold])
        labels = utility >= np.quantile(utility, 1.0 - COLD_TOP)
        value = auc(scores[columns], labels)
        if value is not None:
            found.append(value)
    return float(np.mean(found))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recommend", description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=int, default=2000, help="catalogue of the quality run (2000)")
    parser.add_argument("--users", type=int, default=300, help="raters of the quality run (300)")
    parser.add_argument("--latency-artifacts", type=int, default=11_000,
                        help="catalogue of the served run (11000: about 10,000 of them get events)")
    parser.add_argument("--latency-users", type=int, default=700, help="raters recorded over gRPC (700)")
    parser.add_argument("--calls", type=int, default=3000,
                        help="timed Recommend calls (3000: about ten seconds, long enough for the fit "
                             "in the background that renders looks to run among them)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--browse", type=float, default=0.0,
                        help="share of visits users start from a generator's gallery they choose "
                             "themselves (0: every slate is the platform's, the reported world)")
    parser.add_argument("--looks", type=float, default=0.0,
                        help="weight of each rater's liking for what artifacts look like, judged on "
                             "the rendered catalogue (0: tastes over generators and parameters only, "
                             "the reported world; 1: about as much as a favourite parameter value)")
    parser.add_argument("--periods", type=int, default=PERIODS,
                        help=f"runs of the test period drawn again for the expected figures ({PERIODS})")
    parser.add_argument("--no-latency", action="store_true", help="skip the served latency rows")
    parser.add_argument("--quick", action="store_true", help="a small world and few calls (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.artifacts, args.users = 120, 80
        args.latency_artifacts, args.latency_users, args.calls, args.periods = 600, 60, 40, 4

    simulated: dict[str, Any] = {"artifacts": args.artifacts, "users": args.users, "seed": args.seed,
                                 "browse": args.browse}
    world = simulate(**simulated)
    started = time.perf_counter()
    made = engine()
    looks = described(made, world.artifacts)  # what the server's recommender sees of them
    if args.looks:
        simulated.update(looks=args.looks, seen=judged(made, world.artifacts))
        world = simulate(**simulated)
    progress(f"catalogue rendered and described in {time.perf_counter() - started:.0f} s")
    parts = split(world)
    progress(f"quality world: {len(world.events):,} events, {parts.train.events:,} before the split, "
             f"{len(parts.train.items):,} artifacts known then, {len(parts.cold):,} released after")
    started = time.perf_counter()
    model = Recommender(parts.train, GENERATORS, looks=looks)
    fit_s = time.perf_counter() - started
    plain = Recommender(parts.train, GENERATORS)
    rankers = {MUSEFORGE: museforge_ranker(model), PLAIN: museforge_ranker(plain),
               "most popular": popular_ranker(parts.train),
               KNN: knn_ranker(model)}
    rows = {name: quality(world, parts, rank) for name, rank in rankers.items()}
    ceiling_rank = ceiling_ranker(world, parts)
    ceiling = quality(world, parts, ceiling_rank)
    cold = {MUSEFORGE: cold_auc(world, parts, looks), PLAIN: cold_auc(world, parts)}
    lines = [[name, f"{q.ndcg_future:.3f}", f"{q.ndcg_truth:.3f}", f"{q.coverage:.2f}",
              f"{cold[name]:.3f}" if name in cold else "0.500", str(q.users)]
             for name, q in rows.items()]
    lines.append([CEILING, f"{ceiling.ndcg_future:.3f}",
                  f"{ceiling.ndcg_truth:.3f}", f"{ceiling.coverage:.2f}", "-", str(ceiling.users)])
    print(table(lines, ["recommender", "NDCG@10 held-out", "NDCG@10 hidden truth", "coverage@10",
                        "cold-start AUC", "users"], {1, 2, 3, 4, 5}))
    print(f"{args.users} raters, {args.artifacts:,} artifacts over 40 rounds, split at round 32; "
          f"looks in their tastes: {args.looks:g}; "
          f"fit {fit_s:.2f} s in-process; popularity cannot rank unrated artifacts (AUC 0.5).")

    periods = redrawn(simulated, parts.train, int(world.rounds * SPLIT), args.periods)
    progress(f"{len(periods.runs)} more runs of the test period drawn")
    print()
    runs = judge(periods, parts.train, [u for u in parts.train.weights if parts.train.liked(u)],
                 {**rankers, CEILING: ceiling_rank},
                 {**{name: q.ndcg_future for name, q in rows.items()}, CEILING: ceiling.ndcg_future},
                 "the test period drawn again", "most popular")

    randomised = simulate(**simulated, random_from=int(world.rounds * SPLIT))
    fair = split(randomised)
    if fair.train.weights != parts.train.weights:
        raise RuntimeError("the randomised test period changed the training events")
    scorers = {MUSEFORGE: scores_ranker(model), PLAIN: scores_ranker(plain)}
    own = {name: own_items_ndcg(fair, scorers.get(name, rank)) for name, rank in rankers.items()}
    print()
    print(table([[name, f"{value:.3f}", str(users)] for name, (value, users) in own.items()],
                ["randomised test period", "NDCG@10 of each user's held-out artifacts", "users"], {1, 2}))

    from .recommend_newcomers import report as newcomers  # it imports this module
    print()
    held_out_users = newcomers(world, args.seed, periods, looks)

    ours, popular, knn = rows[MUSEFORGE], rows["most popular"], rows[KNN]
    expect = f"held-out, expected over {len(periods.runs)} runs"
    verdicts: list[tuple[str, float, float | None]] = [
        (f"NDCG@10 ({expect}) >= 1.5x most popular", ratio(runs[MUSEFORGE], runs["most popular"]), 1.5),
        (f"NDCG@10 ({expect}) >= 1.1x item-kNN", ratio(runs[MUSEFORGE], runs[KNN]), 1.1),
        ("  (the ceiling row's, expected, over most popular's)",
         ratio(runs[CEILING], runs["most popular"]), None),
        ("NDCG@10 (randomised test period) >= 1.5x most popular",
         own[MUSEFORGE][0] / own["most popular"][0], 1.5),
        ("NDCG@10 (randomised test period) >= 1.1x item-kNN",
         own[MUSEFORGE][0] / own[KNN][0], 1.1),
        ("NDCG@10 (hidden truth) >= 1.5x most popular", ours.ndcg_truth / max(popular.ndcg_truth, 1e-9), 1.5),
        ("NDCG@10 (hidden truth) >= 1.1x item-kNN", ours.ndcg_truth / max(knn.ndcg_truth, 1e-9), 1.1),
        ("cold-start item AUC >= 0.70", cold[MUSEFORGE], 0.70),
        ("catalogue coverage@10 >= 0.3", ours.coverage, 0.3),
        *held_out_users,
    ]
    if not args.no_latency:
        served = latency(args.latency_artifacts, args.latency_users, args.calls, args.seed)
        print()
        print(table([[f"{served['artifacts']:,.0f}", f"{served['events']:,.0f}", f"{served['record_s']:.1f}",
                      f"{served['fit_s']:.2f}", f"{served['p50_ms']:.2f}", f"{served['p99_ms']:.2f}"]],
                    ["artifacts", "events", "recorded in s", "first fit s", "p50 ms", "p99 ms"],
                    {0, 1, 2, 3, 4, 5}))
        name = f"Recommend p99 < 20 ms for {served['artifacts']:,.0f} artifacts (lower is better)"
        verdicts.append((name, served["p99_ms"], -20.0))
    print()
    for name, value, target in verdicts:
        if target is None:  # a reference figure, not a target
            print(f"{name}: {value:.3f}")
            continue
        met = value <= -target if target < 0 else value >= target
        print(f"{name}: {value:.3f}  {'PASS' if met else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench.recommend``: how well Recommend serves simulated raters, beside two baselines.

Raters with hidden tastes (bench.raters) rate, pick, keep and are shown artifacts over 40
rounds. The events before round 32 train; what follows is held out (a time-ordered split).
Side by side in one run, on the same training events and the same candidates (what the
training events name that the user has not met):

- museforge's recommender (museforge.feedback.recommender: implicit's ALS with features
  for cold start), the code the server runs;
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
import asyncio
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
import numpy as np
import scipy.sparse
from google.protobuf import json_format

from museforge.feedback.interactions import Interactions, interactions, item_of
from museforge.feedback.recommender import Recommender
from museforge.v1 import feedback_pb2 as fb

from .raters import GENERATORS, NOISE, World, simulate
from .report import table
from .servers import ServerSettings, museforge_server, wait_serving

SPLIT = 0.8
K = 10
TRUTH_SHARE = 0.05
COLD_TOP = 0.3


def progress(message: str) -> None:
    print(f"[bench.recommend] {message}", file=sys.stderr, flush=True)


def ndcg(ranked: Sequence[str], relevant: set[str], k: int = K) -> float:
    gains = sum(1.0 / np.log2(i + 2) for i, sha in enumerate(ranked[:k]) if sha in relevant)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(relevant))))
    return gains / ideal if ideal else 0.0


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
        liked_later = {s for s in parts.test.liked(user) if s in parts.train.items}
        if not parts.train.liked(user) or not liked_later:
            continue
        seen = parts.train.seen(user)
        candidates = [s for s in known if s not in seen]
        liked_later -= seen
        if not liked_later:
            continue
        top = rank(user, candidates)
        shown.update(top)
        taste = world.tastes[user]
        utility = {a.sha256: taste.utility(a) for a in world.artifacts}
        ordered = sorted(candidates, key=lambda s: -utility[s])
        best = set(ordered[:max(1, int(len(ordered) * TRUTH_SHARE))])
        future.append(ndcg(top, liked_later))
        truth.append(ndcg(top, best))
    coverage = len(shown) / max(1, len(known))
    return Quality(float(np.mean(future)), float(np.mean(truth)), coverage, len(future))


def cold_auc(world: World, parts: Split) -> float:
    """Mean per-user AUC over artifacts nobody rated in training, known by their provenance only."""
    known = Interactions(weights=parts.train.weights, items=dict(parts.train.items),
                         events=parts.train.events)
    for sha in parts.cold:
        known.items[sha] = item_of(parts.test.items[sha].ref())
    model = Recommender(known, GENERATORS)
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


async def record_world(address: str, world: World, concurrency: int = 16) -> int:
    """Every event of ``world`` recorded over gRPC, ``concurrency`` at a time; how many."""
    async with grpc.aio.insecure_channel(address) as channel:
        record = channel.unary_unary("/museforge.v1.Feedback/RecordFeedback",
                                     request_serializer=fb.RecordFeedbackRequest.SerializeToString,
                                     response_deserializer=fb.FeedbackEvent.FromString)
        queue: asyncio.Queue[fb.RecordFeedbackRequest] = asyncio.Queue()
        for stored in world.events:
            event = json_format.ParseDict(stored.body, fb.FeedbackEvent())
            event.user = stored.user
            queue.put_nowait(fb.RecordFeedbackRequest(event=event))

        async def drain() -> None:
            while not queue.empty():
                await record(queue.get_nowait(), timeout=60)
        await asyncio.gather(*(drain() for _ in range(concurrency)))
    return len(world.events)


def latency(artifacts: int, users: int, calls: int, seed: int) -> dict[str, float]:
    world = simulate(artifacts=artifacts, users=users, seed=seed)
    progress(f"latency world: {len(world.events):,} events over "
             f"{len(interactions(world.events).items):,} artifacts")
    settings = ServerSettings(extra=('plugins = ["image", "mesh"]', "feedback_max_concurrent_per_key = 0"))
    with museforge_server(settings) as server:
        wait_serving(server)
        started = time.perf_counter()
        asyncio.run(record_world(server.address, world))
        recorded_s = time.perf_counter() - started
        with grpc.insecure_channel(server.address) as channel:
            recommend = channel.unary_unary("/museforge.v1.Feedback/Recommend",
                                            request_serializer=fb.RecommendRequest.SerializeToString,
                                            response_deserializer=fb.RecommendResponse.FromString)
            started = time.perf_counter()
            first = recommend(fb.RecommendRequest(user="rater-0000", kind=fb.RECOMMEND_KIND_ARTIFACTS, k=K,
                                                  refresh=True), timeout=300)
            fit_s = time.perf_counter() - started
            names = sorted(world.tastes)
            rng = np.random.default_rng(seed)
            times = []
            for _ in range(calls):
                user = names[int(rng.integers(len(names)))]
                started = time.perf_counter()
                recommend(fb.RecommendRequest(user=user, kind=fb.RECOMMEND_KIND_ARTIFACTS, k=K), timeout=60)
                times.append((time.perf_counter() - started) * 1e3)
    return {"events": float(first.events_used), "artifacts": float(len(interactions(world.events).items)),
            "record_s": recorded_s, "fit_s": fit_s, "p50_ms": float(np.percentile(times, 50)),
            "p99_ms": float(np.percentile(times, 99))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recommend", description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=int, default=2000, help="catalogue of the quality run (2000)")
    parser.add_argument("--users", type=int, default=300, help="raters of the quality run (300)")
    parser.add_argument("--latency-artifacts", type=int, default=11_000,
                        help="catalogue of the served run (11000: about 10,000 of them get events)")
    parser.add_argument("--latency-users", type=int, default=700, help="raters recorded over gRPC (700)")
    parser.add_argument("--calls", type=int, default=400, help="timed Recommend calls (400)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--browse", type=float, default=0.0,
                        help="share of visits users start from a generator's gallery they choose "
                             "themselves (0: every slate is the platform's, the reported world)")
    parser.add_argument("--no-latency", action="store_true", help="skip the served latency rows")
    parser.add_argument("--quick", action="store_true", help="a small world and few calls (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.artifacts, args.users = 400, 80
        args.latency_artifacts, args.latency_users, args.calls = 600, 60, 40

    world = simulate(artifacts=args.artifacts, users=args.users, seed=args.seed, browse=args.browse)
    parts = split(world)
    progress(f"quality world: {len(world.events):,} events, {parts.train.events:,} before the split, "
             f"{len(parts.train.items):,} artifacts known then, {len(parts.cold):,} released after")
    started = time.perf_counter()
    model = Recommender(parts.train, GENERATORS)
    fit_s = time.perf_counter() - started
    rankers = {"museforge (ALS + features)": museforge_ranker(model),
               "most popular": popular_ranker(parts.train),
               "item-kNN (cosine, 50 neighbours)": knn_ranker(model)}
    rows = {name: quality(world, parts, rank) for name, rank in rankers.items()}
    ceiling = quality(world, parts, ceiling_ranker(world, parts))
    cold = cold_auc(world, parts)
    lines = [[name, f"{q.ndcg_future:.3f}", f"{q.ndcg_truth:.3f}", f"{q.coverage:.2f}",
              f"{cold:.3f}" if name.startswith("museforge") else "0.500", str(q.users)]
             for name, q in rows.items()]
    lines.append(["ceiling: hidden utility x exposure", f"{ceiling.ndcg_future:.3f}",
                  f"{ceiling.ndcg_truth:.3f}", f"{ceiling.coverage:.2f}", "-", str(ceiling.users)])
    print(table(lines, ["recommender", "NDCG@10 held-out", "NDCG@10 hidden truth", "coverage@10",
                        "cold-start AUC", "users"], {1, 2, 3, 4, 5}))
    print(f"{args.users} raters, {args.artifacts:,} artifacts over 40 rounds, split at round 32; "
          f"fit {fit_s:.2f} s in-process; popularity cannot rank unrated artifacts (AUC 0.5).")

    randomised = simulate(artifacts=args.artifacts, users=args.users, seed=args.seed,
                          random_from=int(world.rounds * SPLIT), browse=args.browse)
    fair = split(randomised)
    if fair.train.weights != parts.train.weights:
        raise RuntimeError("the randomised test period changed the training events")
    own = {name: own_items_ndcg(fair, scores_ranker(model) if name.startswith("museforge") else rank)
           for name, rank in rankers.items()}
    print()
    print(table([[name, f"{value:.3f}", str(users)] for name, (value, users) in own.items()],
                ["randomised test period", "NDCG@10 of each user's held-out artifacts", "users"], {1, 2}))

    from .recommend_newcomers import report as newcomers  # it imports this module
    print()
    held_out_users = newcomers(world, args.seed)

    ours, popular, knn = rows.values()
    verdicts: list[tuple[str, float, float | None]] = [
        ("NDCG@10 (held-out) >= 1.5x most popular", ours.ndcg_future / max(popular.ndcg_future, 1e-9), 1.5),
        ("NDCG@10 (held-out) >= 1.1x item-kNN", ours.ndcg_future / max(knn.ndcg_future, 1e-9), 1.1),
        ("  (the ceiling row's held-out NDCG@10 over most popular)",
         ceiling.ndcg_future / max(popular.ndcg_future, 1e-9), None),
        ("NDCG@10 (randomised test period) >= 1.5x most popular",
         own["museforge (ALS + features)"][0] / own["most popular"][0], 1.5),
        ("NDCG@10 (randomised test period) >= 1.1x item-kNN",
         own["museforge (ALS + features)"][0] / own["item-kNN (cosine, 50 neighbours)"][0], 1.1),
        ("NDCG@10 (hidden truth) >= 1.5x most popular", ours.ndcg_truth / max(popular.ndcg_truth, 1e-9), 1.5),
        ("NDCG@10 (hidden truth) >= 1.1x item-kNN", ours.ndcg_truth / max(knn.ndcg_truth, 1e-9), 1.1),
        ("cold-start item AUC >= 0.70", cold, 0.70),
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

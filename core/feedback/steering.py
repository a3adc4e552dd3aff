"""Generation steered toward what one user rated highly: best-of-N over rendered latents.

For a request with ``preference=<user>`` the steerer

1. reads the user's newest feedback on this generator and names the latent of every rated
   artifact from its provenance (seed, index and parameters name it exactly), keeping those
   whose latent has the shape this request draws;
2. describes what each rated artifact looks like (:mod:`.media_features`, rendering it
   again from its provenance once per server process) and fits a Bradley-Terry reward
   model (:mod:`.reward`) on the pairs the ratings order; while they order too few (a user
   who only ever liked, or only disliked), fresh draws of the request stand in as "neither
   liked nor disliked";
3. renders candidates: fresh draws, and variations around the best liked artifacts at two
   spreads (a search around what they liked), each noise from a stream of its own derived
   from the request's seed;
4. keeps the best-scoring ones that stay at least a floor apart in what they look like (a
   diversity floor: the outputs never collapse onto one picture), as exact :class:`Draw`
   recipes.

A user with nothing rated for this generator gets the seed's own draws: the very outputs
the request makes without a preference.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from ..engine.generator import Generator
from ..engine.latent import MAX_DRAW_DEPTH, Draw, Variations, draw_of
from ..engine.steering import Render, Steered
from .appearance import Appearance, affordable, rendered
from .interactions import Interactions, Item, interactions
from .reward import RewardModel, preference_pairs
from .store import FeedbackStore

MAX_EVENTS = 5_000  # the user's newest events read per request
MAX_RATED = 256  # the newest rated artifacts of the generator fitted on
MAX_PAIRS = 20_000
CANDIDATES = 128  # rendered per request at most (fewer when outputs are big)
RENDER_BYTES = 8 << 20  # raw output rendered per request for candidates, past the count's own
PARENTS = 4  # liked artifacts varied around
SPREADS = (0.5, 0.75)  # how far those variations go (1 would be a fresh draw)
TYPICAL_WEIGHT = 0.5  # pairs with fresh draws count half: an inference, not something the user said
# Fresh draws stand in as neutral only while the ratings order fewer pairs than this among
# themselves: against what was shown before (steered, so unlike a fresh draw) they would
# teach "unlike what you were shown", whatever the user thought of it.
TYPICAL_UNTIL = 10
FLOOR = 0.9  # outputs stay at least this share of two fresh draws' median distance apart
SHORTLIST = 4  # the diversity floor picks among the best 4 x count candidates (or half, if more)


@dataclass(frozen=True)
class Rated:
    """A rated artifact of the generator: what it is, its summed weight and its latent's recipe."""

    item: Item
    params: Variations
    weight: float
    draw: Draw

    @property
    def can_parent(self) -> bool:
        """Whether a variation on it stays within the nesting a draw may have."""
        return self.draw.depth() < MAX_DRAW_DEPTH


class FeedbackSteerer:
    """Answers ``preference`` from the feedback store (the engine's Steerer)."""

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store
        self.appearance = Appearance()  # shared with the recommender's features of artifacts

    def steer(self, owner: str, generator: Generator, params: Variations, seed: int, count: int,
              render: Render, served: str = "") -> Steered:
        user = params.preference or ""
        shape = _shape(generator, params)
        rated = self.rated(owner, user, generator, shape)
        plain = params.model_copy(update={"preference": None})
        if any(r.weight for r in rated):
            rated, x_rated = self.described(generator, rated, render, served)
        if not any(r.weight for r in rated):  # the request as if unsteered: its seed names the draws
            how = "no ratings of this generator yet: the seed's own draws"
            return Steered(plain, _note(user, len(rated), 0, 0, how))
        total = _candidates(generator, params, count)
        fresh = [Draw(seed=s, truncation=params.truncation) for s in child_seeds(seed, total)]
        x_fresh = rendered(render, plain, fresh[:total // 2])
        typical = x_fresh[~np.isnan(x_fresh).any(axis=1)]
        model, pairs = fit(x_rated, [r.weight for r in rated], typical)
        parents = [rated[i] for i in np.argsort(-model.score(x_rated), kind="stable")
                   if rated[i].weight > 0 and rated[i].can_parent][:PARENTS]
        varied = variations(parents, fresh[total // 2:])
        candidates = fresh[:total // 2] + varied + fresh[total // 2 + len(varied):]
        x = np.concatenate([x_fresh, rendered(render, plain, candidates[total // 2:])])
        scores = np.where(np.isnan(x).any(axis=1), -np.inf, model.score(np.nan_to_num(x)))
        floor = FLOOR * _median_distance(model.standardised(typical))
        chosen = select(scores, np.nan_to_num(model.standardised(x)), count, floor)
        return Steered(plain.model_copy(update={"draws": [candidates[i] for i in chosen]}),
                       _note(user, len(rated), pairs, len(candidates)))

    def rated(self, owner: str, user: str, generator: Generator, shape: tuple[int, ...]) -> list[Rated]:
        """The user's rated artifacts of ``generator`` whose latents have ``shape``, newest last."""
        return rated_in(interactions(self.store.newest(owner, user, MAX_EVENTS)), user, generator, shape)

    def described(self, generator: Generator, rated: Sequence[Rated],
                  render: Render, served: str = "") -> tuple[list[Rated], np.ndarray]:
        """The rated artifacts whose output can be described, and what each looks like."""
        rows = self.features(generator, rated, render, served)
        known = [(r, row) for r, row in zip(rated, rows, strict=True) if row is not None]
        if not known:
            return [], np.zeros((0, 0))
        return [r for r, _ in known], np.stack([row for _, row in known])

    def features(self, generator: Generator, rated: Sequence[Rated],
                 render: Render, served: str = "") -> list[np.ndarray | None]:
        """What each rated artifact looks like, rendered again from its provenance (once per
        process and set of models ``served``). None for one whose output has nothing to describe."""
        return self.appearance.features(generator, rated, render, served)


def rated_in(found: Interactions, user: str, generator: Generator,
             shape: tuple[int, ...] | None = None) -> list[Rated]:
    """``user``'s rated artifacts of ``generator`` in ``found`` (of latent ``shape``, when given),
    the newest MAX_RATED; a walk's frames are left out (drawn from two seeds, no draw names them)."""
    weights = found.weights.get(user, {})
    items = [found.items[sha] for sha in weights if found.items[sha].generator == generator.name]
    rated: list[Rated] = []
    for item in items[-MAX_RATED:]:
        params = parameters_of(generator, item.parameters)
        if params is None or (shape is not None and _shape(generator, params) != shape):
            continue
        draw = draw_of(item.seed, item.index, params)
        if draw is not None and affordable(generator, params, draw):  # provenance is the caller's word
            rated.append(Rated(item, params, weights[item.sha256], draw))
    return rated


def _shape(generator: Generator, params: Variations) -> tuple[int, ...]:
    assert generator.latent_shape is not None  # the engine steers only generators declaring it
    return tuple(generator.latent_shape(params))


def parameters_of(generator: Generator, parameters: object) -> Variations | None:
    """An artifact's parameters as its generator reads them now, or None if it no longer can."""
    count = len(parameters.get("draws") or ()) if isinstance(parameters, dict) else 0
    try:
        params = generator.parameters.model_validate(parameters, context={"count": max(1, count)})
    except (ValidationError, ValueError):
        return None
    return params if isinstance(params, Variations) else None


def _candidates(generator: Generator, params: Variations, count: int) -> int:
    """How many candidates to render: CANDIDATES, fewer when each output is big, never under 2 x count."""
    each = generator.estimate(params, 1).bytes if generator.estimate is not None else 0
    budget = RENDER_BYTES // each if each else CANDIDATES
    return max(2 * count, min(CANDIDATES, int(budget)))


def fit(x_rated: np.ndarray, weights: Sequence[float], x_typical: np.ndarray) -> tuple[RewardModel, int]:
    """The reward model on the rated outputs, and typical ones (weight 0) while the ratings
    order too few pairs alone; and its pair count."""
    ordered = np.asarray(weights, dtype=np.float64)
    if int(np.count_nonzero(ordered[:, None] > ordered[None, :])) >= TYPICAL_UNTIL:
        x_typical = x_typical[:0]
    x = np.concatenate([x_rated, x_typical])
    everything = [*weights, *([0.0] * len(x_typical))]
    pairs, gaps = preference_pairs(everything, MAX_PAIRS, np.random.default_rng(len(x)))
    with_typical = (pairs >= len(x_rated)).any(axis=1)
    return RewardModel.fit(x, pairs, np.where(with_typical, TYPICAL_WEIGHT * gaps, gaps)), len(pairs)


def variations(parents: Sequence[Rated], fresh: Sequence[Draw]) -> list[Draw]:
    """Draws around each parent at each spread, as many as ``fresh`` holds, their noise taken
    from it in turn."""
    found: list[Draw] = []
    per = len(fresh) // max(1, len(parents) * len(SPREADS))
    for parent in parents:
        for spread in SPREADS:
            found += [noise.model_copy(update={"near": parent.draw, "spread": spread})
                      for noise in fresh[len(found):len(found) + per]]
    return found


def child_seeds(seed: int, count: int) -> list[int]:
    """``count`` seeds derived from ``seed`` (numpy's SeedSequence), each below 2^63."""
    words = np.random.SeedSequence(seed).generate_state(count, np.uint64)
    return [int(w) >> 1 for w in words]


def _median_distance(x: np.ndarray) -> float:
    distances = np.linalg.norm(x[:, None] - x[None], axis=2)
    return float(np.median(distances[np.triu_indices(len(x), 1)])) if len(x) > 1 else 0.0


def select(scores: np.ndarray, x: np.ndarray, count: int, floor: float) -> list[int]:
    """The best-scoring ``count`` rows, each at least ``floor`` from those kept before it.

    Only the better half of the rows (at least ``SHORTLIST`` x count) may be chosen: otherwise
    the rows farthest from a cluster of good ones are the worst ones, and diversity would be
    bought with them. When the shortlist holds too few rows that far apart, the floor is
    lowered step by step (the widest spacing that still fills the count), and only at a floor
    of nothing do the best of the rest fill up.
    """
    ranked = [int(i) for i in np.argsort(-scores, kind="stable")]
    shortlist = ranked[:max(SHORTLIST * count, len(ranked) // 2)]
    kept = _spaced(shortlist, x, count, floor)
    while len(kept) < count and floor > 1e-6:
        floor *= 0.8
        kept = _spaced(shortlist, x, count, floor)
    for i in ranked:
        if len(kept) == count:
            break
        if i not in kept:
            kept.append(i)
    return kept


def _spaced(order: Sequence[int], x: np.ndarray, count: int, floor: float) -> list[int]:
    """Greedily, in ``order``, the rows at least ``floor`` from every row kept before them."""
    kept: list[int] = []
    for i in order:
        if len(kept) == count:
            break
        if not kept or float(np.min(np.linalg.norm(x[kept] - x[i], axis=1))) >= floor:
            kept.append(i)
    return kept


def _note(user: str, rated: int, pairs: int, candidates: int, how: str = "") -> str:
    note: dict[str, object] = {"preference": user, "rated": rated, "pairs": pairs, "candidates": candidates}
    if how:
        note["how"] = how
    return json.dumps(note, sort_keys=True)

"""Personal recommendations from feedback: implicit's ALS, with cold start from artifact features.

The model (fitted on all events of one API key's users, never another key's):

- **Collaborative**: implicit's alternating least squares (Hu, Koren and Volinsky's model
  for implicit feedback) on the users x artifacts matrix of signed weights
  (museforge.feedback.interactions; a negative weight is a confident "no"): a user's
  factors and an artifact's factors whose dot product ranks what the user would like.
- **Cold start**: each feature token of an artifact (generator, model version, each
  parameter: museforge.feedback.item_features) is one more row of that matrix, a
  pseudo-user who likes every artifact that has it. Artifacts that share them get close
  factors, and one that nobody rated yet still gets factors from what it is, so it ranks
  by how much it resembles what the user liked.
- **Looks** (``looks``, looks_taste): what each artifact of a latent generator looks like,
  rendered again from its provenance; each user's liking for it, learnt from their ratings,
  is added to their scores, so two artifacts of one preset are told apart, rated or not.
- **Quality and variety** (``quality_and_variety``): the share of the users who met an
  artifact that liked it is added to every user's scores, and a user's artifacts are ranked
  with a fixed per-user noise added, so that alike users do not all get one list.
- **New users** (nothing liked yet) get what most of the key's users liked.

The settings were chosen on bench.raters' seed 1 and are reported on seed 0 (docs/feedback.md).
Fitting 39,000 events over 10,000 artifacts takes about 2 s on one core; scoring is one
matrix-vector product, so an answer over 10,000 artifacts takes a few milliseconds.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .interactions import Interactions, Item
from .item_features import Vocabulary
from .looks_taste import LooksTaste
from .quality_and_variety import artifact_keys, liked_share, varied, with_quality

FACTORS = 24
ITERATIONS = 15
REGULARIZATION = 20.0
CONFIDENCE = 1.0  # alpha in confidence = 1 + alpha * |weight| (Hu, Koren and Volinsky)
FEATURE_WEIGHT = 10.0  # a feature token's liking of the artifacts that have it, beside users' weights
MIN_POSITIVE = 2  # fewer liked pairs than this: popularity only


@dataclass(frozen=True)
class Scored:
    score: float
    reason: str
    item: Item | None = None  # an artifact, or a preset's example
    generator: str = ""
    parameters: dict[str, Any] | None = None


def confidence(weight: float) -> float:
    """implicit's matrix entry for a signed weight: the confidence 1 + alpha * |w|, negative for
    a "no" (implicit reads a negative entry as preference 0 with that confidence; a bare -1
    would weigh no more than a pair nobody touched)."""
    return math.copysign(1.0 + CONFIDENCE * abs(weight), weight)


def _als(matrix: Any, factors: int) -> tuple[np.ndarray, np.ndarray]:
    """(user factors, item factors) of implicit's CPU ALS, one thread (serving keeps the cores)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit warns (and slows) with a threaded BLAS
        model = AlternatingLeastSquares(factors=factors, regularization=REGULARIZATION, alpha=1.0,
                                        iterations=ITERATIONS, num_threads=1, random_state=0)
        model.fit(matrix, show_progress=False)
    return np.asarray(model.user_factors, np.float32), np.asarray(model.item_factors, np.float32)


# (generator, preset parameters) -> whether the generator takes them as a request's parameters
PresetCheck = Callable[[str, Mapping[str, Any]], bool]


def any_preset(generator: str, preset: Mapping[str, Any]) -> bool:
    return True


# A maker's parameters as a request that sets none gets them (JSON), or {} when not known.
DefaultsOf = Callable[[str], Mapping[str, Any]]


def no_defaults(maker: str) -> Mapping[str, Any]:
    return {}


def draw_key(item: Item) -> str:
    """What names one draw of a generator: the same draw written as PNG and as WebP is two files
    (two sha256s) of one picture. '' when the provenance does not name it (an effect's output
    depends on its input, which provenance does not name)."""
    if not item.generator or not item.model_version:
        return ""
    return json.dumps([item.generator, item.model_version, item.seed, item.index, item.parameters],
                      sort_keys=True, separators=(",", ":"))


class Recommender:
    """One fitted model over one key's feedback; read-only once built, safe to share between threads."""

    def __init__(self, found: Interactions, served: Iterable[str] = (), through_seq: int = 0,
                 usable: PresetCheck = any_preset, defaults: DefaultsOf = no_defaults,
                 looks: Mapping[str, np.ndarray] | None = None) -> None:
        """``looks``: what artifacts look like (sha256 -> looks.measured), those described so far."""
        import scipy.sparse

        self.fitted = time.time()
        self.through_seq = through_seq  # the newest event in the store when the fit began
        self.events = found.events
        self.found = found
        self.items: list[Item] = list(found.items.values())
        self.index = {item.sha256: i for i, item in enumerate(self.items)}
        self.users = {user: i for i, user in enumerate(found.weights)}
        self.served = sorted(set(served))
        self.makers = np.array([item.maker for item in self.items], dtype=object)
        self.vocabulary = Vocabulary(self.items, {m: defaults(m) for m in set(self.makers) if m})
        self.looks = LooksTaste(self.items, looks or {})
        self.undescribed = 0  # set by Recommendations: looks still to render,
        self.looks_served: dict[str, str] = {}  # the models of each generator's looks,
        self.tried = 0.0  # and when a fit in the background last tried for more
        self._find_twins()
        # A preset is offered only if its generator takes it as it is now: provenance is the
        # caller's word, and a generator's parameters change between versions.
        checked: dict[str, bool] = {}

        def takes(item: Item) -> bool:  # validated once per preset, not per artifact
            key = item.preset_key()
            if key not in checked:
                checked[key] = usable(item.generator, item.preset)
            return checked[key]

        self.features = self.vocabulary.matrix(self.items)

        rows, columns, values = [], [], []
        likes: Counter[int] = Counter()
        # Per draw (its files as one): the users who met it (liked or not, or only shown) and liked it.
        met, liked = np.zeros(len(self.items)), np.zeros(len(self.items))
        self.cold = np.ones(len(self.items), bool)  # nobody has rated it, for or against
        for user, row in found.weights.items():
            met[list({int(self.draws[self.index[sha]]) for sha in row})] += 1
            liked[list({int(self.draws[self.index[sha]]) for sha, weight in row.items() if weight > 0})] += 1
            for sha, weight in row.items():
                if weight:
                    rows.append(self.users[user])
                    columns.append(self.index[sha])
                    values.append(confidence(weight))
                    self.cold[self.index[sha]] = False
                if weight > 0:
                    likes[self.index[sha]] += 1
        if self.twins:  # one draw in several formats: rated as one
            self.cold &= ~np.isin(self.draws, self.draws[~self.cold])
        # Generators somebody rated, for or against: once per fit, not per answer.
        self.rated_generators = {item.generator for item, cold in zip(self.items, self.cold, strict=True)
                                 if not cold}
        self.popularity = np.zeros(len(self.items), np.float32)
        for column, count in likes.items():
            self.popularity[column] = count
        for twins in self.twins.values():  # and liked as one, by as many as liked any of its files
            self.popularity[twins] = self.popularity[twins].max()
        # Per draw: a picture saved in three formats is one artifact to its share and to the spread.
        canonical = np.flatnonzero(self.canonical)
        quality = np.zeros(len(self.items), np.float32)
        quality[canonical] = liked_share(met[canonical], liked[canonical])
        self.quality = quality[self.draws]
        self.noise_keys = artifact_keys([draw_key(item) or item.sha256 for item in self.items])[self.draws]
        self.preset_groups = self._groups(Item.preset_key, takes)  # once cold is known: groups keep it
        self.generator_groups = self._groups(lambda item: item.generator)
        self.user_factors: np.ndarray | None = None
        self.item_factors = np.zeros((len(self.items), 1), np.float32)
        if len(likes) >= MIN_POSITIVE:
            # Each feature token is one more row, a "user" who likes every artifact that has it:
            # artifacts that share a generator and parameters get close factors, and one that no
            # real user liked yet still gets factors from what it is (cold start).
            item_columns, tokens = self.features.nonzero()
            rows += (tokens + len(self.users)).tolist()
            columns += item_columns.tolist()
            values += [FEATURE_WEIGHT] * len(tokens)
            shape = (len(self.users) + self.features.shape[1], len(self.items))
            matrix = scipy.sparse.csr_matrix((values, (rows, columns)), shape, dtype=np.float32)
            factors = max(2, min(FACTORS, len(self.items) - 1))
            user_factors, self.item_factors = _als(matrix, factors)
            self.user_factors = user_factors[:len(self.users)]
        # Unit-length factors, once: every reason names the liked artifact nearest in direction.
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        self.unit_factors = self.item_factors / np.maximum(norms, 1e-12)

    def _find_twins(self) -> None:
        """Each column's draw (columns of one draw in several formats share it), the columns of
        each draw met in more than one format, and the first column of each draw."""
        keys: dict[str, int] = {}
        draws = np.arange(len(self.items), dtype=np.int64)
        for column, item in enumerate(self.items):
            key = draw_key(item)
            if key:
                draws[column] = keys.setdefault(key, column)
        self.draws = draws
        self.canonical = draws == np.arange(len(self.items))
        self.twins: dict[int, list[int]] = {}
        for column in np.flatnonzero(~self.canonical).tolist():
            self.twins.setdefault(int(draws[column]), [int(draws[column])]).append(column)
        self.extra_files = int((~self.canonical).sum())  # files past a draw's first: a top k reads more

    # -- scoring --------------------------------------------------------------------------

    def user_scores(self, user: str) -> np.ndarray | None:
        """Every artifact's score for ``user``; None for a user who liked nothing yet."""
        row = self.users.get(user)
        if self.user_factors is None or row is None or not self.found.liked(user):
            return None
        scores = with_quality(np.asarray(self.item_factors @ self.user_factors[row], np.float32),
                              self.quality)
        own = {self.index[sha]: weight for sha, weight in self.found.weights[user].items()}
        return self.looks.added(scores, own)

    def _asked(self, user: str, generator: str, since: Mapping[str, float] | None = None) -> _Asked:
        """What one call needs of its user, worked out once rather than per answer. ``since``: the
        user's weights from events recorded after the fit (sha256 -> weight): met, so not offered
        again, and a "no" among them counts as one before the next fit has it."""
        scores = self.user_scores(user)
        own = {self.index[sha]: w for sha, w in {**self.found.weights.get(user, {}), **(since or {})}.items()
               if sha in self.index}
        met = dict(own)
        for column, weight in own.items():  # the same draw in another format is met too
            for twin in self.twins.get(int(self.draws[column]), ()):
                met.setdefault(twin, weight)
        allowed = np.ones(len(self.items), bool) if not generator else self.makers == generator
        if scores is None:  # popularity: only what somebody liked, never what all who met it did not
            allowed &= self.popularity > 0
        disliked = [(column, weight) for column, weight in met.items() if weight < 0]
        return _Asked(
            user=user,
            personal=scores is not None,
            ranked=np.asarray(scores if scores is not None else self.popularity, np.float64),
            allowed=allowed,
            seen=np.array(list(met), dtype=np.int64),
            liked=np.array([column for column, weight in own.items() if weight > 0], dtype=np.int64),
            disliked=np.array([column for column, _ in disliked], dtype=np.int64),
            against=np.array([weight for _, weight in disliked], dtype=np.float64),
        )

    def _nearest_liked(self, asked: _Asked, column: int) -> Item | None:
        if not len(asked.liked):
            return None
        similarity = self.unit_factors[asked.liked] @ self.unit_factors[column]
        return self.items[int(asked.liked[int(np.argmax(similarity))])]

    def _why(self, asked: _Asked, column: int, cold: bool | None = None) -> str:
        """Why ``column`` (or its group, whose ``cold`` says nobody rated any of it) is offered."""
        item = self.items[column]
        describe = self.vocabulary.describe
        if not asked.personal:
            return f"liked by {int(self.popularity[column])} of this key's users ({describe(item)})"
        near = self._nearest_liked(asked, column)
        like = f"close to {near.sha256[:12]}... that you liked ({describe(near)})" if near else \
            "close to what you liked"
        if self.cold[column] if cold is None else cold:
            return f"new, not rated yet: {describe(item)}, {like}"
        return like

    def artifacts(self, user: str, k: int, generator: str = "", since: Mapping[str, float] | None = None
                  ) -> list[Scored]:
        asked = self._asked(user, generator, since)
        asked.allowed[asked.seen] = False
        # A user's own list carries their fixed noise (quality_and_variety); the popular one does not.
        order = varied(asked.ranked, user, self.noise_keys) if asked.personal else asked.ranked
        # One draw in several formats is offered once, in its best-scoring one.
        found: list[Scored] = []
        draws: set[int] = set()
        for c in _top(order, asked.allowed, k + self.extra_files):
            if int(self.draws[c]) not in draws and len(found) < k:
                draws.add(int(self.draws[c]))
                found.append(Scored(float(order[c]), self._why(asked, c), item=self.items[c]))
        return found

    def presets(self, user: str, k: int, generator: str = "", since: Mapping[str, float] | None = None
                ) -> list[Scored]:
        return self._grouped(user, k, generator, self.preset_groups, self._preset_of, since)

    def generators(self, user: str, k: int, generator: str = "", since: Mapping[str, float] | None = None
                   ) -> list[Scored]:
        found = self._grouped(user, k, generator, self.generator_groups, self._generator_of, since)
        # Served generators nobody rated yet come last, in name order: offered, not ranked. A
        # rated one missing above was disliked (by this user, or by all who met it): left out.
        rest = [g for g in self.served
                if g not in self.rated_generators and (not generator or g == generator)]
        return found + [Scored(0.0, "served here; no feedback on it yet", generator=g)
                        for g in rest[:max(0, k - len(found))]]

    def _preset_of(self, item: Item, score: float, reason: str) -> Scored:
        return Scored(score, reason, item=item, generator=item.generator, parameters=item.preset)

    @staticmethod
    def _generator_of(item: Item, score: float, reason: str) -> Scored:
        return Scored(score, reason, generator=item.generator)

    def _groups(self, key: Callable[[Item], str], keep: Callable[[Item], bool] = lambda item: True
                ) -> _Grouping:
        """The served generators' artifacts (those ``keep`` keeps) grouped by ``key`` (fixed at fit time)."""
        names: dict[str, int] = {}
        ids = np.full(len(self.items), -1, np.int64)
        for column, item in enumerate(self.items):
            name = key(item) if item.generator else ""
            if name and (not self.served or item.generator in self.served) and keep(item):
                ids[column] = names.setdefault(name, len(names))
        if self.twins:  # a draw in two formats is one member, not two of the best three
            ids[~self.canonical] = -1
        rated = np.zeros(len(names), bool)
        rated[ids[(ids >= 0) & ~self.cold]] = True
        return _Grouping(list(names), ids, rated)

    def _grouped(self, user: str, k: int, generator: str, groups: _Grouping,
                 make: Callable[[Item, float, str], Scored], since: Mapping[str, float] | None = None
                 ) -> list[Scored]:
        """Groups of artifacts ranked by the mean score of their best three members and of every
        member the user disliked, which counts against its group at its score (at most 0) plus
        the user's weight for it (-1 for a thumbs down); a group holding only that is left out.

        One sort over the allowed columns, by group, then score (best first), then column: a
        loop over groups in Python would cost milliseconds per call once float parameters make
        thousands of presets."""
        asked = self._asked(user, generator, since)
        against = asked.allowed[asked.disliked] & (groups.ids[asked.disliked] >= 0)
        against_ids = groups.ids[asked.disliked[against]]
        penalty = np.zeros(len(groups.names))
        np.add.at(penalty, against_ids, np.minimum(asked.ranked[asked.disliked[against]], 0.0)
                  + asked.against[against])
        counted = np.bincount(against_ids, minlength=len(groups.names))
        asked.allowed[asked.disliked] = False
        ranked = asked.ranked
        columns = np.flatnonzero(asked.allowed & (groups.ids >= 0))
        if not len(columns):
            return []
        columns = columns[np.lexsort((columns, -ranked[columns], groups.ids[columns]))]
        ids = groups.ids[columns]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        place = np.arange(len(columns)) - np.repeat(starts, np.diff(np.r_[starts, len(columns)]))
        best = place < 3  # each group's best three
        sums = np.add.reduceat(np.where(best, ranked[columns], 0.0), starts)
        group_ids = ids[starts]
        means = (sums + penalty[group_ids]) / (np.minimum(np.diff(np.r_[starts, len(columns)]), 3)
                                               + counted[group_ids])
        scored = sorted(((float(mean), groups.names[int(ids[start])], int(columns[start]))
                         for mean, start in zip(means, starts, strict=True)), key=lambda t: (-t[0], t[1]))
        liked = groups.ids[asked.liked]
        answers = []
        for score, _, column in scored[:k]:
            group = groups.ids[column]
            mine, disliked = int(np.count_nonzero(liked == group)), int(counted[group])
            reason = f"you liked {mine} of its artifacts" if mine else \
                self._why(asked, column, cold=not groups.rated[group])
            if disliked:
                reason += f"; you disliked {disliked} of its artifacts"
            answers.append(make(self.items[column], score, reason))
        return answers


@dataclass(frozen=True)
class _Grouping:
    """Groups of columns: their names, and each column's group (-1: none)."""

    names: list[str]
    ids: np.ndarray
    rated: np.ndarray  # per group: somebody rated one of its members, for or against


@dataclass
class _Asked:
    """One call's user: scores (or popularity), the columns still allowed, and their own."""

    user: str
    personal: bool
    ranked: np.ndarray
    allowed: np.ndarray
    seen: np.ndarray
    liked: np.ndarray
    disliked: np.ndarray
    against: np.ndarray  # the user's weight for each disliked column (negative)


def _top(scores: np.ndarray, allowed: np.ndarray, k: int) -> list[int]:
    """Columns of the k highest allowed scores, best first. Among equal scores they come in
    column order, but which of several tied at the k-th place make the cut is numpy's choice
    (the same every run)."""
    candidates = np.flatnonzero(allowed)
    if not len(candidates) or k <= 0:
        return []
    values = scores[candidates]
    if len(candidates) > k:
        keep = np.argpartition(-values, k - 1)[:k]
        candidates, values = candidates[keep], values[keep]
    order = np.lexsort((candidates, -values))
    return [int(c) for c in candidates[order]]

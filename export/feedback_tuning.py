"""A new model version tuned on accumulated feedback, promoted only if it wins a held-out A/B.

``museforge export <model> --from-feedback`` runs this for a latent generator's model:

1. The key's feedback events are split in time: the older 75% tune, the newest 25% judge.
   Tuning fits one Bradley-Terry reward model over what the outputs look like (the one
   steering uses) on the pairs each user's ratings order, pooled over the users; judging
   fits one per held-out user (at least 20 ordered pairs each).
2. Tuning moves the model's latent prior toward what the older feedback liked: 1,024
   ordinary draws are rendered and scored; the new prior is ``a * z + mu``, ``mu`` the
   score-weighted mean of the draws (softmax at one standard deviation of the scores; per
   channel for a noise field, so every sheet size shares it) and ``a`` what keeps each
   element's spread at 1 (never under 0.7: the outputs keep their variety). The ONNX model
   of the new version is the old graph with that affine step in front of its latent input:
   the same network, no retraining, and every caller and parameter works as before.
3. A/B: 400 seeds rendered by both versions; for each, each held-out user's model gives its
   Bradley-Terry chance that they pick the new output over the old. The new version is
   written only if the median held-out user is expected to pick it in at least ``min_win``
   (60%) of them and three in four held-out users prefer it at all; otherwise nothing is
   written and the old version stays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from museforge.engine.catalogue import Engine
from museforge.engine.generator import Generator, Media
from museforge.engine.latent import Draw, Variations
from museforge.engine.pipeline import GenerationState
from museforge.feedback.interactions import interactions
from museforge.feedback.reward import RewardModel, preference_pairs
from museforge.feedback.steering import FeedbackSteerer, child_seeds, rated_in, rendered
from museforge.feedback.store import FeedbackStore, StoredEvent
from museforge.runtime.manifest import MODEL_NAME, Manifest
from museforge.runtime.versions import next_version

from .convert import write_version

TUNE_SHARE = 0.75  # the older events tune; the newest judge
SAMPLES = 1024  # ordinary draws scored to find the new prior
COMPARISONS = 400  # A/B seeds
MIN_PAIRS = 20  # fewer ordered pairs than this in either part: too little feedback to tell
MIN_JUDGES = 3  # held-out users with a model of their own; fewer: too little feedback to judge
AGREEING = 0.75  # the share of them that must prefer the new version at all
MIN_SPREAD = 0.7  # the new prior's noise keeps at least this share of the old one's
CHUNK = 128  # draws rendered per call


class TooLittleFeedback(ValueError):
    """The feedback orders too few pairs to tune on or to judge with."""


@dataclass(frozen=True)
class TuneResult:
    promoted: bool
    win: float  # the median held-out user's expected share of A/B picks for the new version
    version: int  # the version written, or that would have been
    directory: Path | None  # where it was written (None: refused)
    shift: float  # root mean square of mu: how far the prior moved
    spread: float  # a
    mu: np.ndarray
    pairs: tuple[int, int]  # ordered pairs tuning, judging
    events: tuple[int, int]
    wins: tuple[float, ...]  # each held-out user's expected share of picks for the new version


def latent_generator(engine: Engine, model: str) -> Generator:
    """The steerable generator that runs ``model``."""
    for generator in engine.generators.values():
        if generator.latent_shape is not None and any(s.name == model for s in generator.models):
            return generator
    steerable = sorted(s.name for g in engine.generators.values() if g.latent_shape for s in g.models)
    raise ValueError(f"{model} is no latent generator's model; tunable: {', '.join(steerable) or 'none'}")


def latent_input(manifest: Manifest, shape: tuple[int, ...]) -> str:
    """The model input the latent goes into: float32, one axis more than a draw, and the same
    size wherever the draw's axes are fixed."""
    for tensor in manifest.inputs:
        dims = tensor.shape[1:]
        if tensor.dtype == "float32" and len(dims) == len(shape) and all(
                not isinstance(d, int) or d == s for d, s in zip(dims, shape, strict=True)):
            return tensor.name
    raise ValueError(f"{manifest.name} has no float32 input shaped like its latents {shape}")


class ShiftedState(GenerationState):
    """A generation context that feeds ``a * z + mu`` where the model reads its latent."""

    def __init__(self, engine: Engine, generator: Generator, target: tuple[str, str], spread: float,
                 mu: np.ndarray) -> None:
        base = engine.state(generator, generator.formats[0])
        super().__init__(runtime=base.runtime, allowed=base.allowed, cancel=base.cancel, format=base.format)
        self.target, self.spread, self.mu = target, np.float32(spread), mu.astype(np.float32)

    def infer(self, model: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if model == self.target[0]:
            name = self.target[1]
            inputs = {**inputs, name: (self.spread * inputs[name] + self.mu).astype(np.float32)}
        return super().infer(model, inputs)


def render_features(engine: Engine, generator: Generator, params: Variations, draws: Sequence[Draw],
                    state: GenerationState | None = None) -> np.ndarray:
    """What each draw makes, described as steering describes it (rows in order), in chunks."""
    def render(drawn: Variations, count: int) -> list[Media]:
        return engine.render(generator, drawn, count, state)

    return np.concatenate([rendered(render, params, draws[start:start + CHUNK])
                           for start in range(0, len(draws), CHUNK)])


def render_media(engine: Engine, generator: Generator, params: Variations, draws: Sequence[Draw],
                 state: GenerationState | None = None) -> list[Media]:
    """What each draw makes (in order), in chunks; through ``state`` when given."""
    made: list[Media] = []
    for start in range(0, len(draws), CHUNK):
        part = list(draws[start:start + CHUNK])
        chosen = params.model_copy(update={"draws": part, "preference": None})
        made += sorted(engine.render(generator, chosen, len(part), state), key=lambda m: m.index)
    return made


@dataclass(frozen=True)
class UserPairs:
    """One user's rated artifacts, described, and the pairs their weights order."""

    x: np.ndarray
    pairs: np.ndarray
    gaps: np.ndarray


def users_pairs(engine: Engine, generator: Generator, events: Sequence[StoredEvent],
                steerer: FeedbackSteerer) -> list[UserPairs]:
    """Every user of ``events`` whose ratings of ``generator`` order at least one pair."""
    found = interactions(events)

    def render(params: Variations, count: int) -> list[Media]:
        return engine.render(generator, params, count)

    users = []
    for number, user in enumerate(found.weights):
        rated, x = steerer.described(generator, rated_in(found, user, generator), render)
        if len(rated) >= 2:
            pairs, gaps = preference_pairs([r.weight for r in rated], 5_000, np.random.default_rng(number))
            if len(pairs):
                users.append(UserPairs(x, pairs, gaps))
    return users


def pooled_reward(users: Sequence[UserPairs]) -> RewardModel:
    """One reward model on every user's pairs (the population's taste, as far as they share one)."""
    offsets = np.cumsum([0, *(len(u.x) for u in users[:-1])])
    return RewardModel.fit(np.concatenate([u.x for u in users]),
                           np.concatenate([u.pairs + o for u, o in zip(users, offsets, strict=True)]),
                           np.concatenate([u.gaps for u in users]))


def prior_shift(latents: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, float]:
    """(mu, a): the score-weighted mean of the draws (per channel for a noise field) and the
    scale that keeps each element's spread at 1, never under MIN_SPREAD."""
    weights = np.exp((scores - scores.max()) / max(float(scores.std()), 1e-9))
    weights /= weights.sum()
    mu = np.tensordot(weights, latents.astype(np.float64), axes=1)
    if mu.ndim == 3:  # (channels, rows, columns): one shift per channel, for any field size
        mu = mu.mean(axis=(1, 2), keepdims=True)
    spread = float(np.sqrt(max(MIN_SPREAD**2, 1.0 - float(np.mean(mu**2)))))
    return mu.astype(np.float32), spread


def shifted_onnx(source: Path, latent: str, spread: float, mu: np.ndarray) -> onnx.ModelProto:
    """The model at ``source`` with ``a * z + mu`` in front of its input ``latent``."""
    model = onnx.load(str(source))
    graph = model.graph
    shifted = f"{latent}__tuned"
    for node in graph.node:
        node.input[:] = [shifted if name == latent else name for name in node.input]
    for output in graph.output:  # a graph that passes its latent straight out keeps doing so
        if output.name == latent:
            raise ValueError(f"{source} returns its input {latent} as an output; it cannot be shifted")
    mu_batched = mu.reshape((1, *mu.shape))
    graph.initializer.extend([
        onnx.numpy_helper.from_array(np.array(spread, dtype=np.float32), f"{latent}__spread"),
        onnx.numpy_helper.from_array(mu_batched.astype(np.float32), f"{latent}__mu"),
    ])
    graph.node.insert(0, onnx.helper.make_node("Mul", [latent, f"{latent}__spread"], [f"{latent}__scaled"]))
    graph.node.insert(1, onnx.helper.make_node("Add", [f"{latent}__scaled", f"{latent}__mu"], [shifted]))
    onnx.checker.check_model(model)
    return model


def judge_of(user: UserPairs) -> RewardModel:
    """One held-out user's reward model, its pairs weighed as many as the artifacts they rated:
    n rated artifacts order up to n^2 / 2 pairs, but they are n judgements, and counted as
    n^2 / 2 they make the model sure of itself far past what n ratings say (its chances, which
    the A/B reads, would run to the extremes)."""
    return RewardModel.fit(user.x, user.pairs, user.gaps * len(user.x) / len(user.pairs))


def held_out_wins(judges: Sequence[RewardModel], x_old: np.ndarray, x_new: np.ndarray) -> list[float]:
    """The share of A/B picks each held-out user is expected to give the new version.

    Each judge (one held-out user's own reward model) gives its Bradley-Terry chance of new
    over old, seed by seed. Per user, not pooled: a pooled judge of a few users who agree on
    nothing still leans somewhere, and would promote a version no one else wants. And chances,
    not which side scores higher: that would promote a shift too small for anyone to see, as
    long as it leaned the judge's way on every seed.
    """
    return [float(np.mean(1.0 / (1.0 + np.exp(judge.score(x_old) - judge.score(x_new))))) for judge in judges]


def failed_rules(wins: Sequence[float], min_win: float) -> list[str]:
    """The promotion rules ``wins`` fails, in words (none: promoted). The median held-out user
    must pick the new version at least ``min_win`` of the time, and at least AGREEING of them
    prefer it at all: a few users who agree on nothing have a median too, and it can land anywhere."""
    if len(wins) < MIN_JUDGES:
        return [f"had {len(wins)} held-out users to judge it (needs {MIN_JUDGES})"]
    failed = []
    median = float(np.median(wins))
    if median < min_win:
        failed.append(f"won {median:.1%} of the held-out A/B comparisons (needs {min_win:.0%})")
    preferring = int(np.sum(np.asarray(wins) > 0.5))
    if preferring / len(wins) < AGREEING:
        failed.append(f"was preferred by {preferring} of {len(wins)} held-out users "
                      f"(needs {AGREEING:.0%} of them)")
    return failed


def promoted(wins: Sequence[float], min_win: float) -> bool:
    return not failed_rules(wins, min_win)


def refusal(wins: Sequence[float], min_win: float) -> str:
    """Why ``promoted(wins, min_win)`` refused: each rule that failed."""
    return " and ".join(failed_rules(wins, min_win)) or "was promoted"


def tune_from_feedback(engine: Engine, model: str, store: FeedbackStore, owner: str, output: Path,
                       min_win: float = 0.6, seed: int = 0,
                       progress: Callable[[str], None] = lambda _: None, version: int | None = None
                       ) -> TuneResult:
    """``version``: the version to write (default: past both the served one and ``output``'s newest)."""
    generator = latent_generator(engine, model)
    assert generator.latent_shape is not None
    loaded = engine.runtime.models[model]
    if loaded.manifest is None:
        raise ValueError(f"{model} has no manifest to tune from")
    params = generator.parameters()
    assert isinstance(params, Variations)
    shape = tuple(generator.latent_shape(params))
    target = (model, latent_input(loaded.manifest, shape))

    events = [e for e in store.events(owner, None)
              if (e.body.get("artifact") or {}).get("generator") == generator.name]
    split = int(len(events) * TUNE_SHARE)
    steerer = FeedbackSteerer(store)
    progress(f"{len(events):,} events on {generator.name}: the older {split:,} tune, the newest "
             f"{len(events) - split:,} judge")
    tuning = users_pairs(engine, generator, events[:split], steerer)
    held = users_pairs(engine, generator, events[split:], steerer)
    judging = [u for u in held if len(u.pairs) >= MIN_PAIRS]
    tune_pairs = sum(len(u.pairs) for u in tuning)
    judge_pairs = sum(len(u.pairs) for u in judging)
    if tune_pairs < MIN_PAIRS or len(judging) < MIN_JUDGES:
        raise TooLittleFeedback(f"the feedback orders {tune_pairs} pairs to tune on, and {len(judging)} of "
                                f"the newest quarter's users order {MIN_PAIRS} pairs or more to judge with; "
                                f"at least {MIN_PAIRS} pairs and {MIN_JUDGES} such users are needed")

    draws = [Draw(seed=s) for s in child_seeds(seed, SAMPLES)]
    progress(f"scoring {SAMPLES:,} draws")
    scores = pooled_reward(tuning).score(render_features(engine, generator, params, draws))
    mu, spread = prior_shift(np.stack([d.latent(shape) for d in draws]), scores)

    progress(f"A/B over {COMPARISONS} seeds")
    seeds = [Draw(seed=s) for s in child_seeds(seed + 1, COMPARISONS)]
    x_old = render_features(engine, generator, params, seeds)
    shifted = ShiftedState(engine, generator, target, spread, mu)
    x_new = render_features(engine, generator, params, seeds, shifted)
    wins = held_out_wins([judge_of(u) for u in judging], x_old, x_new)
    win = float(np.median(wins))
    version = version or max(loaded.version + 1, next_version(output))
    shift = float(np.sqrt(np.mean(mu.astype(np.float64) ** 2)))
    result = TuneResult(promoted(wins, min_win), win, version, None, shift, spread, mu,
                        (tune_pairs, judge_pairs), (split, len(events) - split), tuple(wins))
    if not result.promoted:
        return result
    directory = write_tuned(loaded.directory / str(loaded.version), loaded.manifest, output, version,
                              target[1], shape, spread, mu, result, owner)
    return replace(result, directory=directory)


def write_tuned(source: Path, parent: Manifest, output: Path, version: int, latent: str,
                shape: tuple[int, ...], spread: float, mu: np.ndarray, result: TuneResult,
                owner: str) -> Path:
    """The tuned graph and its manifest in ``output/<version>/`` (whole or not at all, never over
    an existing version), checked against the shift it stands for before it is kept."""
    tuned = shifted_onnx(source / MODEL_NAME, latent, spread, mu)
    _check_equivalent(source / MODEL_NAME, tuned, latent, spread, mu, parent, shape)
    details: dict[str, Any] = {
        "tuned_from": {"version": parent.version, "sha256": parent.sha256},
        "method": "latent prior a*z+mu from feedback (Bradley-Terry reward, score-weighted mean)",
        "owner": owner, "events": {"tune": result.events[0], "judge": result.events[1]},
        "pairs": {"tune": result.pairs[0], "judge": result.pairs[1]},
        "shift_rms": round(result.shift, 4), "spread": round(spread, 4),
    }
    manifest = parent.model_copy(update={
        "version": version,
        "training": {**parent.training, "feedback_tuning": details},
        "metrics": {**parent.metrics, "feedback_ab": {"win": round(result.win, 4), "seeds": COMPARISONS,
                                                      "users": [round(w, 4) for w in result.wins]}},
    })
    return write_version(tuned, manifest, output, version, replace=False)[0]


def _check_equivalent(source: Path, tuned: onnx.ModelProto, latent: str, spread: float, mu: np.ndarray,
                      parent: Manifest, shape: tuple[int, ...]) -> None:
    """The tuned graph on z gives what the old one gives on a * z + mu (ONNX Runtime, CPU)."""
    old = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(tuned.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed: dict[str, np.ndarray] = {}
    for tensor in parent.inputs:
        dims = [2 if not isinstance(d, int) else d for d in tensor.shape]
        if tensor.name == latent:
            feed[tensor.name] = rng.standard_normal((2, *shape)).astype(np.float32)
        elif tensor.dtype == "float32":
            feed[tensor.name] = np.eye(dims[-1], dtype=np.float32)[np.zeros(dims[:-1], dtype=np.int64)]
        else:
            feed[tensor.name] = np.zeros(dims, dtype=np.dtype(tensor.dtype))
    shifted = {**feed, latent: (np.float32(spread) * feed[latent] + mu[None]).astype(np.float32)}
    for a, b in zip(new.run(None, feed), old.run(None, shifted), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

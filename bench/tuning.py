"""``python -m bench.tuning``: a model version tuned on a studio's feedback, promoted only when it
wins a held-out A/B; the same run on a studio whose users agree on nothing, where it must be
refused.

Two simulated studios per generator (users as in bench.steering: hidden tastes over what they
see, star ratings with noise):

- shared taste: 16 users whose tastes lie close to one archetype (cosine about 0.9);
- no shared taste: 16 users with tastes drawn independently.

Each user rates 30 ordinary artifacts, one user after another, so the newest quarter of the
events (the tool's judge) comes from users the tuning never saw. The tool
(``museforge export <model> --from-feedback``, museforge.export.feedback_tuning) tunes and
decides. Then 16 more users of the same studio, who gave no feedback, each pick between the
old and the new version's output for 100 seeds (Bradley-Terry noise): the true A/B.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from museforge.engine.catalogue import Engine
from museforge.engine.generator import Media
from museforge.engine.latent import Draw, Variations
from museforge.engine.request import Artifact
from museforge.export.feedback_tuning import (
    ShiftedState,
    TooLittleFeedback,
    latent_generator,
    latent_input,
    render_media,
    tune_from_feedback,
)
from museforge.feedback.steering import child_seeds
from museforge.feedback.store import FeedbackStore

from .report import table
from .steering import PICK_TEMPERATURE, Bench, User
from .steering_judges import measures

RATERS, RATINGS, JUDGES, SEEDS = 16, 30, 16, 100
SHARED_NOISE = 0.35  # each member's taste: the archetype plus this much noise, normalised
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "image.faces": ("png", {"size": 32}),
    "image.tiles": ("png", {"kind": "floor", "look": "green"}),
    "mesh.props": ("obj", {"family": "vase", "resolution": 32}),
}


def progress(message: str) -> None:
    print(f"[bench.tuning] {message}", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    studio: str
    promoted: bool | None  # None: refused for too little feedback
    judge_win: float
    true_win: float
    shift: float


def members(base: User, shared: bool, count: int, start: int, rng: np.random.Generator) -> list[User]:
    found = []
    for i in range(count):
        noise = rng.normal(size=base.taste.shape) * (base.taste != 0)
        taste = base.taste + SHARED_NOISE * noise if shared else noise
        taste /= np.linalg.norm(taste)
        user = User(f"{base.name}-{start + i}", base.generator, base.modality, base.fmt, base.params,
                    taste, base.mean, base.scale, base.spread)
        found.append(user)
    return found


def encoded(engine: Engine, fmt: str, media: list[Media]) -> list[Artifact]:
    encoder = engine.encoders[fmt]
    return [Artifact(encoder.encode(m, {}), encoder.media_type, fmt, m.index, "", {}) for m in media]


def studio(engine: Engine, model: str, shared: bool, rng: np.random.Generator) -> Outcome:
    generator = latent_generator(engine, model)
    fmt, preset = MODELS[model]
    name = "shared taste" if shared else "no shared taste"
    with tempfile.TemporaryDirectory() as folder:
        store = FeedbackStore(Path(folder) / "feedback.sqlite3")
        bench = Bench(engine, store)
        base = User(model, generator.name, generator.modality, fmt, preset)
        bench.calibrate(base, rng)
        for user in members(base, shared, RATERS, 0, rng):
            bench.rate(user, bench.make(user, int(rng.integers(1 << 40)), RATINGS, False), rng)
        try:
            result = tune_from_feedback(engine, model, store, "", Path(folder) / "out", progress=progress)
        except TooLittleFeedback as exc:
            progress(f"{model} ({name}): {exc}")
            store.close()
            return Outcome(name, None, float("nan"), float("nan"), 0.0)
        store.close()
        params = generator.parameters.model_validate(preset)
        assert isinstance(params, Variations) and generator.latent_shape is not None
        loaded = engine.runtime.models[model]
        assert loaded.manifest is not None
        target = (model, latent_input(loaded.manifest, tuple(generator.latent_shape(params))))
        draws = [Draw(seed=s) for s in child_seeds(int(rng.integers(1 << 40)), SEEDS)]
        old = encoded(engine, fmt, render_media(engine, generator, params, draws))
        shifted = ShiftedState(engine, generator, target, result.spread, result.mu)
        new = encoded(engine, fmt, render_media(engine, generator, params, draws, shifted))
        seen_new, seen_old = (np.stack([measures(base.modality, a.data) for a in side])
                              for side in (new, old))
        wins = []
        for judge in members(base, shared, JUDGES, RATERS, rng):
            margin = (judge.seen(seen_new) - judge.seen(seen_old)) / PICK_TEMPERATURE
            wins += list(rng.random(len(margin)) < 1.0 / (1.0 + np.exp(-margin)))
    return Outcome(name, result.promoted, result.win, float(np.mean(wins)), result.shift)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tuning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS), help="models to tune")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    engine = Engine()
    engine.settings.plugins = ["image", "mesh"]
    engine.start()
    rows: list[list[str]] = []
    verdicts: list[tuple[str, Any, bool]] = []
    for model in args.models:
        for shared in (True, False):
            found = studio(engine, model, shared, rng)
            decision = "refused (too little)" if found.promoted is None else \
                "promoted" if found.promoted else "refused"
            rows.append([model, found.studio, f"{found.judge_win:.3f}", decision, f"{found.true_win:.3f}",
                         f"{found.shift:.3f}"])
            progress(" | ".join(rows[-1]))
            right = bool(found.promoted) == (found.true_win >= 0.6)
            verdicts.append((f"{model}, {found.studio}: {decision}, true A/B win {found.true_win:.3f} "
                             "(promoted only if it wins >= 60%)", found.true_win, right))
    print(table(rows, ["model", "studio", "judge win (held-out feedback)", "decision",
                       "true A/B win (16 new users x 100 seeds)", "prior shift (rms)"], {2, 4, 5}))
    print(f"{RATERS} raters x {RATINGS} star ratings per studio; the newest quarter of the events judges.")
    print()
    for name, _, met in verdicts:
        print(f"{name}: {'PASS' if met else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

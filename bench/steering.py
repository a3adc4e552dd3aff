"""``python -m bench.steering``: generation steered toward simulated users, and the reward model
that steers it, measured on held-out picks.

Each simulated user asks one latent generator for one preset (a tile kind and look, an icon
category, a prop family ...) and has a hidden taste: a random weighing of what they see in
the output (bench.steering_judges: brightness, contrast, colour, coverage; a prop's height,
depth, roundness), in units of how much those vary over that preset's ordinary draws.

Steering, the code the server runs (``preference=<user>``; Engine + FeedbackStore +
FeedbackSteerer in this process, a real SQLite store):

- 5 rounds: the user asks for 20 artifacts with ``preference`` set and gives each a star
  rating (1-5) from their noisy utility; the ratings are recorded as feedback events;
- then, on fresh seeds, the top 8 steered generations against the same seeds' 8 ordinary
  ones: mean hidden utility (gain in standard deviations of utility over ordinary draws)
  and diversity (mean pairwise distance of thumbnails, or of prop profiles).

Reward model: each user also picks between two ordinary artifacts 100 times (Bradley-Terry
noise on their utility); a reward model is fitted on those picks (museforge's own
``fit``); its accuracy is measured on 100 more picks between artifacts it never saw.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import json_format
from PIL import Image

from museforge.client import artifact_ref
from museforge.engine.catalogue import Engine
from museforge.engine.generator import Media
from museforge.engine.latent import Draw, Variations
from museforge.engine.request import Artifact
from museforge.feedback.interactions import PICK, STARS
from museforge.feedback.steering import FeedbackSteerer, child_seeds, fit, rendered
from museforge.feedback.store import FeedbackStore

from .report import table
from .steering_judges import measures, signature

ROUNDS, PER_ROUND, TOP = 5, 20, 8
EVAL_SEEDS = 3  # top-8 comparisons per user, on fresh seeds
REFERENCE = 64  # ordinary draws a user's utility is standardised on
NOISE = 0.5  # the spread of a star rating around the utility (in its standard deviations)
PICK_TEMPERATURE = 0.5  # Bradley-Terry temperature of a simulated pick
PICKS, PICK_POOL = 100, 40  # picks to fit on and to hold out; artifacts in each pool


LOOKS = ["stone", "teal", "ochre", "violet", "green", "red"]
FAMILIES = ["rock", "vase", "crate", "column", "mushroom"]


def _choice(options: list[Any]) -> Callable[[np.random.Generator], Any]:
    return lambda rng: options[int(rng.integers(len(options)))]


PRESETS: dict[str, tuple[str, Callable[[np.random.Generator], dict[str, Any]]]] = {
    "image.faces": ("png", lambda rng: {"size": 32}),
    "image.icons": ("png", lambda rng: {"category": _choice(["smileys", "people", "animals", "food", "travel",
                                                             "objects", "symbols"])(rng)}),
    "image.tiles": ("png", lambda rng: {"kind": _choice(["floor", "wall"])(rng),
                                        "look": _choice(LOOKS)(rng)}),
    "image.texture": ("png", lambda rng: {"family": _choice(["brick", "grass", "gravel"])(rng),
                                          "width": 128, "height": 128}),
    "mesh.props": ("obj", lambda rng: {"family": _choice(FAMILIES)(rng), "resolution": 32}),
}


def progress(message: str) -> None:
    print(f"[bench.steering] {message}", file=sys.stderr, flush=True)


@dataclass
class User:
    name: str
    generator: str
    modality: str
    fmt: str
    params: dict[str, Any]
    taste: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    spread: float = 1.0  # sd of utility over ordinary draws

    def utility(self, artifact: Artifact) -> float:
        """Hidden utility in standard deviations of ordinary draws' utility."""
        return float(self.seen(measures(self.modality, artifact.data)))

    def seen(self, measured: np.ndarray) -> np.ndarray:
        """The utility of measures (one row, or many): standardised, weighed, in sds."""
        return np.asarray(((measured - self.mean) / self.scale) @ self.taste / self.spread)


def ref_of(artifact: Artifact) -> dict[str, Any]:
    """The artifact's feedback reference (museforge.client.artifact_ref) as the store keeps it."""
    return json_format.MessageToDict(artifact_ref(artifact.data, artifact.metadata))


class Bench:
    def __init__(self, engine: Engine, store: FeedbackStore, sheets: Path | None = None) -> None:
        self.engine, self.store, self.sheets = engine, store, sheets
        self.steer_ms: list[float] = []

    def make(self, user: User, seed: int, count: int, steered: bool) -> list[Artifact]:
        params = {**user.params, "preference": user.name} if steered else user.params
        started = time.perf_counter()
        request = self.engine.prepare(user.generator, params, seed, count, user.fmt)
        if steered:
            self.steer_ms.append((time.perf_counter() - started) * 1e3)
        return [e for e in self.engine.run(request) if isinstance(e, Artifact)]

    def calibrate(self, user: User, rng: np.random.Generator) -> None:
        """The user's measures standardised over ordinary draws, and a random taste over them."""
        seen = np.stack([measures(user.modality, a.data)
                         for a in self.make(user, 10_000 + int(rng.integers(1 << 30)), REFERENCE // 2, False)
                         + self.make(user, 10_000 + int(rng.integers(1 << 30)), REFERENCE // 2, False)])
        user.mean, user.scale = seen.mean(axis=0), np.maximum(seen.std(axis=0), 1e-9)
        varied = seen.std(axis=0) > 1e-4  # a grey image has no saturation to like
        taste = rng.normal(size=seen.shape[1]) * varied
        user.taste = taste / np.linalg.norm(taste)
        user.spread = float(np.std((seen - user.mean) / user.scale @ user.taste))

    def rate(self, user: User, artifacts: list[Artifact], rng: np.random.Generator) -> list[float]:
        found = []
        for artifact in artifacts:
            u = user.utility(artifact)
            found.append(u)
            stars = int(np.clip(np.rint(3 + 1.2 * (u + NOISE * rng.normal())), 1, 5))
            ref = ref_of(artifact)
            self.store.record("", user.name, STARS, ref["sha256"], {"artifact": ref, "stars": stars})
        return found

    def steer(self, user: User, rng: np.random.Generator) -> dict[str, Any]:
        rounds = []
        for r in range(ROUNDS):
            made = self.make(user, 1_000 * r + int(rng.integers(1 << 30)), PER_ROUND, True)
            rounds.append(float(np.mean(self.rate(user, made, rng))))
        gains: list[float] = []
        ratios: list[float] = []
        for _ in range(EVAL_SEEDS):
            seed = int(rng.integers(1 << 40))
            steered, plain = self.make(user, seed, TOP, True), self.make(user, seed, TOP, False)
            gains.append(mean_utility(user, steered) - mean_utility(user, plain))
            if self.sheets is not None and user.modality == "image" and not ratios:
                save_sheet(self.sheets / f"{user.name}.png", plain, steered)
            ratios.append(diversity(user, steered) / diversity(user, plain))
        return {"gain": float(np.mean(gains)), "diversity": float(np.mean(ratios)), "rounds": rounds}

    def picks(self, user: User, rng: np.random.Generator) -> tuple[float, float]:
        """Held-out pick accuracy of the reward model fitted on the user's picks: against the
        user's noisy picks, and against their hidden utility."""
        name = f"{user.name}-picks"
        pools = [self.make(user, int(rng.integers(1 << 40)), PICK_POOL, False) for _ in range(2)]
        utilities = [[user.utility(a) for a in pool] for pool in pools]

        def pick(pool: int) -> tuple[int, int]:
            a, b = (int(i) for i in rng.choice(PICK_POOL, 2, replace=False))
            p = 1.0 / (1.0 + np.exp(-(utilities[pool][a] - utilities[pool][b]) / PICK_TEMPERATURE))
            return (a, b) if rng.random() < p else (b, a)

        for _ in range(PICKS):
            won, lost = pick(0)
            refs = [ref_of(pools[0][won]), ref_of(pools[0][lost])]
            self.store.record("", name, PICK, refs[0]["sha256"], {"artifact": refs[0], "candidates": refs})
        generator = self.engine.generators[user.generator]
        params = generator.parameters.model_validate(user.params)
        assert isinstance(params, Variations) and generator.latent_shape is not None
        steerer = FeedbackSteerer(self.store)

        def render(drawn: Variations, count: int) -> list[Media]:
            return self.engine.render(generator, drawn, count)

        rated = steerer.rated("", name, generator, tuple(generator.latent_shape(params)))
        rated, x_rated = steerer.described(generator, rated, render)
        seeds = child_seeds(int(rng.integers(1 << 40)), 32)
        typical = rendered(render, params, [Draw(seed=s) for s in seeds])
        model, _ = fit(x_rated, [r.weight for r in rated], typical)
        held = [pick(1) for _ in range(PICKS)]
        refs = [ref_of(a) for a in pools[1]]
        draws = [Draw(seed=int(r["seed"]), index=r.get("index", 0)) for r in refs]  # proto3 JSON leaves 0 out
        scores = model.score(rendered(render, params, draws))
        noisy = np.mean([scores[a] > scores[b] for a, b in held])
        truth = np.mean([(scores[a] > scores[b]) == (utilities[1][a] > utilities[1][b]) for a, b in held])
        return float(noisy), float(truth)


def save_sheet(path: Path, plain: list[Artifact], steered: list[Artifact]) -> None:
    """Two rows, the same seed's ordinary draws above and its steered ones below, on grey."""
    rows = [[Image.open(io.BytesIO(a.data)).convert("RGBA") for a in row] for row in (plain, steered)]
    side = max(max(i.size) for row in rows for i in row)
    sheet = Image.new("RGBA", (len(plain) * (side + 4), 2 * (side + 4)), (128, 128, 128, 255))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.alpha_composite(image, (c * (side + 4) + 2, r * (side + 4) + 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.convert("RGB").resize((sheet.width * 2, sheet.height * 2), Image.Resampling.NEAREST).save(path)


def mean_utility(user: User, artifacts: list[Artifact]) -> float:
    return float(np.mean([user.utility(a) for a in artifacts]))


def diversity(user: User, artifacts: list[Artifact]) -> float:
    s = np.stack([signature(user.modality, a.data) for a in artifacts])
    distances = np.linalg.norm(s[:, None] - s[None], axis=2)
    return float(distances[np.triu_indices(len(s), 1)].mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steering", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=6, help="simulated users per generator (6)")
    parser.add_argument("--generators", nargs="*", default=list(PRESETS), help="latent generators to steer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheets", type=Path, help="write each image user's first comparison here: "
                        "ordinary draws above, steered below (PNG)")
    parser.add_argument("--quick", action="store_true",
                        help="one user each of faces and tiles (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.generators = 1, ["image.faces", "image.tiles"]
    rng = np.random.default_rng(args.seed)
    engine = Engine()
    engine.settings.plugins = ["image", "mesh"]
    engine.start()
    rows, results = [], []
    with tempfile.TemporaryDirectory() as folder:
        store = FeedbackStore(Path(folder) / "feedback.sqlite3")
        engine.steerer = FeedbackSteerer(store)
        bench = Bench(engine, store, args.sheets)
        for generator in args.generators:
            fmt, preset = PRESETS[generator]
            found = []
            for u in range(args.users):
                modality = engine.generators[generator].modality
                user = User(f"{generator}-{u}", generator, modality, fmt, preset(rng))
                bench.calibrate(user, rng)
                steered = bench.steer(user, rng)
                noisy, truth = bench.picks(user, rng)
                found.append({**steered, "noisy": noisy, "truth": truth})
                progress(f"{user.name} {user.params}: gain {steered['gain']:+.2f} sd, diversity "
                         f"x{steered['diversity']:.2f}, rounds {[round(x, 2) for x in steered['rounds']]}, "
                         f"picks {noisy:.2f} / {truth:.2f}")
            results += found
            rows.append([generator, str(len(found)), *_figures(found)])
        store.close()
    rows.append(["all", str(len(results)), *_figures(results)])
    print(table(rows, ["generator", "users", "round 1 utility", "round 5 utility", "top-8 gain (sd)",
                       "median gain", "diversity kept", "held-out pick acc", "acc vs hidden truth"],
                {1, 2, 3, 4, 5, 6, 7, 8}))
    steer = np.asarray(bench.steer_ms)
    print(f"{ROUNDS} rounds of {PER_ROUND} star ratings per user, then the top {TOP} of {EVAL_SEEDS} fresh "
          f"seeds steered against the same seeds unsteered; picks: {PICKS} to fit, {PICKS} held out.")
    print(f"steering a request (prepare, fit included): p50 {np.percentile(steer, 50):.0f} ms, "
          f"p99 {np.percentile(steer, 99):.0f} ms over {len(steer)} requests")
    print()
    # The median user: a few tastes for a measure that barely varies (a smiley's yellow) count
    # tens of standard deviations, and would carry a mean alone.
    gain = float(np.median([r["gain"] for r in results]))
    kept = float(np.mean([r["diversity"] for r in results]))
    accuracy = float(np.mean([r["noisy"] for r in results]))
    for name, value, met in (
        ("top-8 hidden utility up >= 1 sd after 5 rounds of 20 ratings (median user)", gain, gain >= 1.0),
        ("diversity down < 10% (kept > 0.90)", kept, kept > 0.90),
        ("reward model accuracy on held-out picks >= 70%", accuracy, accuracy >= 0.70),
    ):
        print(f"{name}: {value:.3f}  {'PASS' if met else 'MISS'}")
    return 0


def _figures(found: list[dict[str, Any]]) -> list[str]:
    def mean(pick: Callable[[dict[str, Any]], float]) -> float:
        return float(np.mean([pick(f) for f in found]))

    return [f"{mean(lambda f: f['rounds'][0]):+.2f}", f"{mean(lambda f: f['rounds'][-1]):+.2f}",
            f"{mean(lambda f: f['gain']):+.2f}", f"{float(np.median([f['gain'] for f in found])):+.2f}",
            f"{mean(lambda f: f['diversity']):.2f}",
            f"{mean(lambda f: f['noisy']):.2f}", f"{mean(lambda f: f['truth']):.2f}"]


if __name__ == "__main__":
    sys.exit(main())

"""Simulated raters for the recommendation bench: hidden tastes, noisy answers, events in time order.

The catalogue is artifacts of the built-in latent generators, each named by its generator
and parameters as its provenance would (tile kind, look and palette, icon category, prop
family and resolution, texture family and tileability, face size) plus a seed and a
hidden quality of its own (how good that one picture is: shared by everyone, visible in
nothing a model can read before people rate it).

A user's hidden utility for an artifact is the sum of

- the user's liking for its generator (one or two favourites),
- the user's liking for each of its parameter values (a favourite look, category,
  family ...), drawn around one of a few shared taste archetypes, so users overlap as
  real audiences do,
- the artifact's hidden quality,
- with ``looks``, their liking for what it looks like (the steering bench's judges on the
  rendered artifact: bright or dark, contrasted, busy with edges, saturated, warm ...).

Artifacts are released over time; each round, every active user is shown a slate of four
recent or popular artifacts and answers with noise (a Gumbel-noised pick among the slate,
thumbs, stars from the noisy utility, a keep now and then).

With ``browse`` above 0, that share of visits starts from the user instead of the platform:
they open the gallery of a generator they like (chosen with odds e to the power of their
liking for it) and meet four artifacts from its whole back catalogue, as people on real sites
rate what they went looking for as well as what they were shown. With slates only, what users
rate later is mostly what the platform chose to show them; with browsing it also follows taste.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from museforge.feedback.interactions import KEEP, PICK, SHOWN, STARS, THUMBS
from museforge.feedback.store import StoredEvent

from .steering_judges import IMAGE_MEASURES, MESH_MEASURES

SPACES: dict[str, dict[str, list[Any]]] = {
    "image.tiles": {"kind": ["floor", "wall"], "look": ["stone", "teal", "ochre", "violet", "green", "red"],
                    "palette": [8, 12, 24]},
    "image.icons": {"category": ["smileys", "people", "animals", "food", "travel", "activities", "objects",
                                 "symbols", "flags"]},
    "mesh.props": {"family": ["rock", "vase", "crate", "column", "mushroom"], "resolution": [48, 64]},
    "image.texture": {"family": ["brick", "grass", "gravel"], "tileable": [True, False]},
    "image.faces": {"size": [32, 64, 128]},
}
GENERATORS = list(SPACES)
ARCHETYPES = 6
SLATE = 4
NOISE = 0.6  # the spread of a user's answers around their utility


@dataclass(frozen=True)
class Artifact:
    sha256: str
    generator: str
    parameters: dict[str, Any]
    seed: int
    quality: float
    released: int  # the round it appears in

    def ref(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "generator": self.generator, "modelVersion": "1",
                "seed": str(self.seed), "parameters": self.parameters}


@dataclass
class Taste:
    generators: np.ndarray  # (len(GENERATORS),)
    values: dict[tuple[str, str, str], float]  # (generator, parameter, value) -> liking
    archetype: int = 0
    # With looks: (generator's modality -> weights over the judges' measures), and what each
    # artifact looks like to them (sha256 -> standardised measures).
    sight: dict[str, np.ndarray] = field(default_factory=dict)
    seen: Mapping[str, np.ndarray] = field(default_factory=dict)

    def utility(self, artifact: Artifact) -> float:
        found = float(self.generators[GENERATORS.index(artifact.generator)]) + artifact.quality
        for name, value in artifact.parameters.items():
            found += self.values.get((artifact.generator, name, str(value)), 0.0)
        if self.sight:
            found += float(self.sight[modality(artifact.generator)] @ self.seen[artifact.sha256])
        return found


def modality(generator: str) -> str:
    return "mesh" if generator.startswith("mesh.") else "image"


@dataclass
class World:
    artifacts: list[Artifact]
    tastes: dict[str, Taste]
    events: list[StoredEvent] = field(default_factory=list)
    rounds: int = 0


def catalogue(count: int, rounds: int, rng: np.random.Generator) -> list[Artifact]:
    """``count`` artifacts, released evenly over ``rounds`` (a fifth of them before the first)."""
    found = []
    for i in range(count):
        generator = GENERATORS[int(rng.integers(len(GENERATORS)))]
        space = SPACES[generator]
        parameters = {name: values[int(rng.integers(len(values)))] for name, values in space.items()}
        seed = int(rng.integers(1, 2**31))
        sha = hashlib.sha256(f"{generator}{parameters}{seed}{i}".encode()).hexdigest()
        released = 0 if i < count // 5 else int(i * rounds / count)
        found.append(Artifact(sha, generator, parameters, seed, float(rng.normal(0.0, 0.5)), released))
    return found


def tastes(users: int, rng: np.random.Generator) -> dict[str, Taste]:
    archetypes = []
    for _ in range(ARCHETYPES):
        generators = rng.normal(-0.5, 0.3, len(GENERATORS))
        generators[rng.choice(len(GENERATORS), 2, replace=False)] += [1.5, 0.8]
        values = {}
        for generator, space in SPACES.items():
            for name, options in space.items():
                favourite = options[int(rng.integers(len(options)))]
                for option in options:
                    values[(generator, name, str(option))] = (1.2 if option == favourite else 0.0) + \
                        float(rng.normal(0.0, 0.3))
        archetypes.append(Taste(generators, values))
    found = {}
    for u in range(users):
        which = int(rng.integers(ARCHETYPES))
        base = archetypes[which]
        found[f"rater-{u:04d}"] = Taste(base.generators + rng.normal(0.0, 0.3, len(GENERATORS)),
                                        {k: v + float(rng.normal(0.0, 0.3)) for k, v in base.values.items()},
                                        which)
    return found


def with_looks(tastes: dict[str, Taste], weight: float, seen: Mapping[str, np.ndarray],
               rng: np.random.Generator) -> None:
    """Give every taste a liking for what artifacts look like, around its archetype's: unit-length
    weights over the judges' standardised measures, times ``weight``."""
    widths = {"image": len(IMAGE_MEASURES), "mesh": len(MESH_MEASURES)}

    def unit(x: np.ndarray) -> np.ndarray:
        return x / max(float(np.linalg.norm(x)), 1e-9)

    archetypes = [{kind: unit(rng.normal(0.0, 1.0, width)) for kind, width in widths.items()}
                  for _ in range(ARCHETYPES)]
    for taste in tastes.values():
        own = archetypes[taste.archetype]
        taste.sight = {kind: weight * unit(w + rng.normal(0.0, 0.3, len(w))) for kind, w in own.items()}
        taste.seen = seen


def simulate(artifacts: int = 2000, users: int = 300, rounds: int = 40, seed: int = 0,
             active: float = 0.5, random_from: int | None = None, browse: float = 0.0,
             redraw: tuple[int, int] | None = None, looks: float = 0.0,
             seen: Mapping[str, np.ndarray] | None = None) -> World:
    """Events of ``users`` raters over ``rounds`` rounds, oldest first (seq and time increase).

    From round ``random_from`` on (if given), every slate is drawn uniformly from everything
    released, as in a randomised-exposure test period (Yahoo! R3, Coat): what users like then
    says what they like, not what they were shown. The rounds before it, and so every event
    before it, are the same as without it.

    With ``browse``, that share of visits (before ``random_from``) is the user's own: a gallery
    of one generator, picked by their liking for it, four artifacts drawn from all it released.
    At 0 no random number is drawn for it, so the world is the slates-only one.

    With ``redraw=(round, stream)``, every draw from that round on comes from a random stream of
    its own (``stream`` names it): the same world and the same events before that round, another
    run of the rounds after it. Held-out events are one run of chance (which popular artifacts a
    user happens to be shown); many such runs give what a ranking can expect against them.

    With ``looks`` above 0, each taste also weighs what the artifacts look like (``seen``: sha256
    -> the judges' standardised measures, bench.raters_looks), drawn from a random stream of its
    own: the catalogue and every other liking stay as at 0.
    """
    if redraw is not None and not 0 <= redraw[0] < rounds:
        raise ValueError(f"redraw round {redraw[0]} is not one of the {rounds} rounds")
    rng = np.random.default_rng(seed)
    world = World(catalogue(artifacts, rounds, rng), tastes(users, rng), rounds=rounds)
    if looks:
        if seen is None:
            raise ValueError("looks needs what the artifacts look like (seen)")
        with_looks(world.tastes, looks, seen, np.random.default_rng([seed, 3]))
    shown_count = np.ones(len(world.artifacts))
    seq = 0

    def emit(user: str, kind: int, body: dict[str, Any], when: int) -> None:
        nonlocal seq
        seq += 1
        world.events.append(StoredEvent(seq, f"e{seq}", "", user, kind, body["artifact"]["sha256"], body,
                                        float(when)))

    makers = np.array([GENERATORS.index(a.generator) for a in world.artifacts])
    for when in range(rounds):
        if redraw is not None and when == redraw[0]:
            rng = np.random.default_rng([seed, 2, redraw[1]])  # not the world's, nor the held-out draw's
        available = np.flatnonzero([a.released <= when for a in world.artifacts])
        recent = available[[world.artifacts[i].released >= when - 3 for i in available]]
        for user, taste in world.tastes.items():
            if rng.random() > active:
                continue
            if random_from is not None and when >= random_from:
                slate = set(rng.choice(available, SLATE, replace=False).tolist())
            elif browse > 0 and rng.random() < browse:
                slate = gallery(taste, available, makers, rng)
            else:
                # Half the slate from what is new, half from what many were shown (popular).
                weights = shown_count[available] / shown_count[available].sum()
                slate = set(rng.choice(available, SLATE // 2, replace=False, p=weights).tolist())
            pool = recent if len(recent) >= SLATE else available
            while len(slate) < SLATE:
                slate.add(int(pool[int(rng.integers(len(pool)))]))
            shown = [world.artifacts[i] for i in slate]
            for i in slate:
                shown_count[i] += 1
            noisy = [taste.utility(a) + float(rng.gumbel(0.0, NOISE)) for a in shown]
            best = shown[int(np.argmax(noisy))]
            answer = float(rng.random())
            if answer < 0.4:
                emit(user, PICK, {"kind": "FEEDBACK_KIND_PICK", "artifact": {"sha256": best.sha256},
                                  "candidates": [a.ref() for a in shown]}, when)
                continue
            for artifact, value in zip(shown, noisy, strict=True):
                if answer < 0.7:
                    emit(user, THUMBS, {"kind": "FEEDBACK_KIND_THUMBS", "artifact": artifact.ref(),
                                        "thumb": "THUMB_UP" if value > 1.0 else "THUMB_DOWN"}, when)
                elif answer < 0.9:
                    stars = int(np.clip(np.round(value + 2.0), 1, 5))
                    emit(user, STARS, {"kind": "FEEDBACK_KIND_STARS", "artifact": artifact.ref(),
                                       "stars": stars}, when)
                elif value > 1.5:
                    emit(user, KEEP, {"kind": "FEEDBACK_KIND_KEEP", "artifact": artifact.ref()}, when)
                else:
                    emit(user, SHOWN, {"kind": "FEEDBACK_KIND_SHOWN", "artifact": artifact.ref()}, when)
    return world


def gallery(taste: Taste, available: np.ndarray, makers: np.ndarray, rng: np.random.Generator) -> set[int]:
    """A slate the user found: a generator picked with odds exp(liking), then SLATE of its released
    artifacts (fewer if it has released fewer)."""
    odds = np.exp(taste.generators - taste.generators.max())
    generator = int(rng.choice(len(GENERATORS), p=odds / odds.sum()))
    own = available[makers[available] == generator]
    return set(rng.choice(own, min(SLATE, len(own)), replace=False).tolist())

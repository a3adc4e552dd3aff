"""What the simulated catalogue looks like, rendered for real by the built-in generators.

Two views of the same renders, kept apart on purpose:

- ``judged``: what a simulated rater sees, measured by the steering bench's judges on the
  encoded file (an image's brightness, contrast, edges, saturation, warmth and coverage; a
  prop's height, depth, roundness and roughness), standardised over the generator's catalogue:
  what a taste for looks (``raters.simulate(looks=...)``) weighs;
- ``described``: what the server's recommender knows, rendered through its own code
  (museforge.feedback.looks over an in-process Engine, no time limit).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from museforge.engine.catalogue import Engine
from museforge.engine.request import Artifact as Made
from museforge.feedback.appearance import Appearance
from museforge.feedback.interactions import Item
from museforge.feedback.looks import Looks, engine_renderer

from .raters import Artifact
from .steering_judges import measures

MODALITY = {"mesh.props": ("mesh", "obj")}  # the rest are images, judged as PNG


def engine() -> Engine:
    found = Engine()
    found.settings.plugins = ["image", "mesh"]
    found.start()
    return found


def judged(made: Engine, artifacts: Sequence[Artifact]) -> dict[str, np.ndarray]:
    """sha256 -> the judges' measures of it, standardised over its generator's artifacts."""
    raw: dict[str, np.ndarray] = {}
    for artifact in artifacts:
        modality, fmt = MODALITY.get(artifact.generator, ("image", "png"))
        request = made.prepare(artifact.generator, artifact.parameters, artifact.seed, 1, fmt)
        data = next(e for e in made.run(request) if isinstance(e, Made)).data
        raw[artifact.sha256] = measures(modality, data)
    found: dict[str, np.ndarray] = {}
    for generator in {a.generator for a in artifacts}:
        own = [a.sha256 for a in artifacts if a.generator == generator]
        x = np.stack([raw[sha] for sha in own])
        z = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-9)
        found.update(zip(own, z, strict=True))
    return found


def described(made: Engine, artifacts: Sequence[Artifact]) -> dict[str, np.ndarray]:
    """sha256 -> its looks.MEASURES, as the server's recommender renders and describes it."""
    items = [Item(a.sha256, a.generator, "", "1", a.seed, a.parameters) for a in artifacts]
    described_now = Looks(Appearance(len(items)), engine_renderer(made), float("inf")).describe(items)
    assert not described_now.left
    return described_now.looks

"""What a key's artifacts look like, rendered again from their provenance.

Provenance names a latent generator's artifact exactly (seed, index, parameters), so the
server can render it again and measure what it looks like (media_features): an image's
brightness, contrast, colourfulness, edges, warmth and how much of the square it covers; a
prop's height, depth, girth and roughness. Each user's liking for those measures is learnt
from their ratings (looks_taste), so a brand-new bright face reaches who liked bright faces
before anyone rated it, where the generator and parameters alone cannot tell two faces apart.

Rendering takes time (a 512 px texture about 0.15 s on one core here), so a fit renders for
about ``seconds`` (at least one chunk of each generator) and leaves the rest to the next fits;
what was rendered once is kept (appearance.Appearance, shared with steering).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..engine.generator import Generator, Media
from ..engine.latent import Variations, draw_of
from ..engine.steering import Render
from .appearance import Appearance
from .interactions import Item
from .steering import Rated, parameters_of

log = logging.getLogger(__name__)

# A generator served here, how to render its draws, and the models it serves (their versions
# and digests: what a render makes changes with them).
Renderer = tuple[Generator, Render, str]
CHUNK = 8  # draws rendered between two looks at the clock (8 textures: about 1 s)
MESH_WIDTH = 14  # media_features.mesh_features: 3 extents, 3 radius figures, 8 heights


MEASURES = ("brightness", "contrast", "colour", "edges", "warmth", "coverage", "height", "depth", "girth",
            "roughness")


def measures(vector: np.ndarray) -> dict[str, float]:
    """The named measures of a media_features vector (an image's or a mesh's)."""
    v = [float(x) for x in vector[:11]]
    if len(vector) == MESH_WIDTH:
        return {"height": v[1], "depth": v[2] / max(v[0], 1e-9), "girth": v[3], "roughness": v[5]}
    return {"brightness": v[6], "contrast": v[7], "colour": v[8], "edges": v[9], "warmth": v[0] - v[2],
            "coverage": v[10]}


class Looks:
    """Renders a key's artifacts of latent generators, a few seconds' worth per fit."""

    def __init__(self, appearance: Appearance, renderer: Callable[[str], Renderer | None],
                 seconds: float) -> None:
        self.appearance = appearance
        self.renderer = renderer
        self.seconds = seconds  # 0: no looks at all

    def describe(self, items: Sequence[Item]) -> tuple[dict[str, np.ndarray], int]:
        """sha256 -> features of each of ``items`` rendered now or before, and how many are left
        to render (at the next fits)."""
        if self.seconds <= 0:
            return {}, 0
        deadline = time.monotonic() + self.seconds
        vectors: dict[str, np.ndarray] = {}
        left, began = 0, False
        for name, rated in self._latent(items).items():
            found = self.renderer(name)
            if found is None:
                continue
            generator, render, served = found
            missing = self.appearance.missing(generator, rated, served)
            missing.sort(key=lambda i: rated[i].params.model_dump_json())  # one render per parameters
            for start in range(0, len(missing), CHUNK):
                if began and time.monotonic() >= deadline:  # one chunk at least: every fit gets on
                    left += len(missing) - start
                    break
                began = True
                self._render(generator, [rated[i] for i in missing[start:start + CHUNK]], render, served)
            for r, vector in zip(rated, self.appearance.known(generator, rated, served), strict=True):
                if vector is not None:
                    vectors[r.item.sha256] = vector
        return vectors, left

    def _latent(self, items: Sequence[Item]) -> dict[str, list[Rated]]:
        """The items whose provenance names a latent of a generator served here, by generator."""
        found: dict[str, list[Rated]] = {}
        generators: dict[str, Generator | None] = {}
        presets: dict[tuple[str, str], Variations | None] = {}
        for item in items:
            if not item.generator:
                continue
            if item.generator not in generators:
                served = self.renderer(item.generator)
                generators[item.generator] = served[0] if served and served[0].latent_shape else None
            generator = generators[item.generator]
            key = (item.generator, json.dumps(item.parameters, sort_keys=True, default=str))
            if key not in presets:  # validated once per preset, not per artifact
                presets[key] = parameters_of(generator, item.parameters) if generator is not None else None
            params = presets[key]
            draw = draw_of(item.seed, item.index, params) if params is not None else None
            if params is not None and draw is not None:
                found.setdefault(item.generator, []).append(Rated(item, params, 0.0, draw))
        return found

    def _render(self, generator: Generator, rated: Sequence[Rated], render: Render, served: str) -> None:
        try:
            self.appearance.features(generator, rated, render, served)
        except Exception as exc:  # a plugin's failure costs its artifacts their looks, never the fit
            log.warning("could not render %d artifacts of %s to describe them: %s", len(rated),
                        generator.name, exc)
            self.appearance.features(generator, rated, _nothing, served)  # known: nothing to describe


def _nothing(params: object, count: int) -> list[Media]:
    return []

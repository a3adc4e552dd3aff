"""What a key's artifacts look like, rendered again from their provenance.

Provenance names a latent generator's artifact exactly (seed, index, parameters), so the
server can render it again and measure what it looks like (media_features): an image's
brightness, contrast, colourfulness, edges, warmth and how much of the square it covers; a
prop's height, depth, girth and roughness. Each user's liking for those measures is learnt
from their ratings (looks_taste), so a brand-new bright face reaches who liked bright faces
before anyone rated it, where the generator and parameters alone cannot tell two faces apart.

Rendering takes time (a 512 px texture about 0.15 s on one core here), so only fits in the
background render, each for about ``seconds`` (one chunk at least, and only while no call is
being answered: calls come first), and leave the rest to the next; a fit that answers a call
uses what is known already. What a key's last model knew is carried into its next fit, and
what was rendered once is kept for the process as well (appearance.Appearance, shared with
steering). Provenance is the caller's word: an artifact whose output would pass MAX_BYTES, or
whose noise would pass appearance.MAX_NOISE_BYTES, is not rendered (it counts as average).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..engine.generator import Cancelled, Generator
from ..engine.latent import Variations, draw_of
from ..engine.steering import Render
from .appearance import Appearance, affordable, output_bytes
from .interactions import Item
from .steering import Rated, parameters_of

log = logging.getLogger(__name__)

# A generator served here, how to render its draws, and the models it serves (their versions
# and digests: what a render makes changes with them).
Renderer = tuple[Generator, Render, str]
CHUNK = 8  # draws rendered between two looks at the clock (8 textures: about 1 s)
MAX_BYTES = 4 << 20  # an artifact whose one output takes more (a 1024 px RGBA texture) is not rendered
QUIET_POLL = 0.05  # seconds between two looks at whether calls are still coming
QUIET_WAIT = 2.0  # seconds a chunk waits for calls to stop at most
RETRY_FAILED = 600.0  # seconds before an artifact whose render failed is tried again
MESH_WIDTH = 14  # media_features.mesh_features: 3 extents, 3 radius figures, 8 heights
MEASURES = ("brightness", "contrast", "colour", "edges", "warmth", "coverage", "height", "depth", "girth",
            "roughness")


def measured(vector: np.ndarray) -> np.ndarray:
    """The named MEASURES of a media_features vector (an image's or a mesh's; the other kind's 0)."""
    v = [float(x) for x in vector[:11]]
    found = np.zeros(len(MEASURES))
    if len(vector) == MESH_WIDTH:
        found[6:] = [v[1], v[2] / max(v[0], 1e-9), v[3], v[5]]
    else:
        found[:6] = [v[6], v[7], v[8], v[9], v[0] - v[2], v[10]]
    return found


class Looks:
    """Renders a key's artifacts of latent generators, a few seconds' worth per background fit."""

    def __init__(self, appearance: Appearance, renderer: Callable[[str], Renderer | None],
                 seconds: float, stop: threading.Event | None = None) -> None:
        self.busy: Callable[[], bool] = lambda: False  # calls are being answered: renders wait
        self.appearance = appearance
        self.renderer = renderer
        self.seconds = seconds  # 0: no looks at all
        self.stop = stop or threading.Event()  # set when the server stops: renders end early
        self._failed: dict[tuple[str, str, str, str], float] = {}  # cache key -> when it failed
        self._lock = threading.Lock()

    def describe(self, items: Sequence[Item], known: Mapping[str, np.ndarray] | None = None,
                 render: bool = True) -> tuple[dict[str, np.ndarray], int]:
        """sha256 -> MEASURES of each of ``items`` known (``known``: from the key's last fit), kept
        or rendered now (with ``render``), and how many are left to render at the next fits."""
        if self.seconds <= 0:
            return {}, 0
        known = known or {}
        deadline = time.monotonic() + self.seconds
        found: dict[str, np.ndarray] = {sha: v for sha, v in known.items()}
        left, began = 0, False
        for name, sized in self._latent([item for item in items if item.sha256 not in known]).items():
            served_by = self.renderer(name)
            if served_by is None:
                continue
            generator, make, served = served_by
            rated = [r for r, _ in sized]
            # Never rendered here (nor failed of late), in parameters order: one render per parameters.
            missing = sorted(set(self.appearance.missing(generator, rated, served))
                             & set(self._untried(generator, rated, served)),
                             key=lambda i: (rated[i].params.model_dump_json(), i))
            for start in range(0, len(missing), CHUNK):
                if not render or not self._quiet(deadline) or (began and time.monotonic() >= deadline):
                    left += len(missing) - start  # one chunk at least, once quiet: fits get on
                    break
                began = True
                chunk = [rated[i] for i in missing[start:start + CHUNK]]
                left += self._render(generator, chunk, make, served)
            for r, vector in zip(rated, self.appearance.known(generator, rated, served), strict=True):
                if vector is not None:
                    found[r.item.sha256] = measured(vector)
        return found, left

    def _quiet(self, deadline: float) -> bool:
        """Waits while calls are being answered (they come first: a render holds the cores), up to
        QUIET_WAIT or ``deadline``, so a steady stream of calls slows the renders but never stops
        them; False if the server stops meanwhile."""
        until = min(deadline, time.monotonic() + QUIET_WAIT)
        while self.busy() and time.monotonic() < until and not self.stop.is_set():
            time.sleep(QUIET_POLL)
        return not self.stop.is_set()

    def _latent(self, items: Sequence[Item]) -> dict[str, list[tuple[Rated, int]]]:
        """The items whose provenance names an affordable latent of a generator served here, by
        generator, each with the raw bytes of its output."""
        found: dict[str, list[tuple[Rated, int]]] = {}
        generators: dict[str, Generator | None] = {}
        presets: dict[tuple[str, str], tuple[Variations, int] | None] = {}
        for item in items:
            if not item.generator:
                continue
            if item.generator not in generators:
                served = self.renderer(item.generator)
                generators[item.generator] = served[0] if served and served[0].latent_shape else None
            generator = generators[item.generator]
            key = (item.generator, json.dumps(item.parameters, sort_keys=True, default=str))
            if key not in presets:  # validated and sized once per preset, not per artifact
                params = parameters_of(generator, item.parameters) if generator is not None else None
                size = output_bytes(generator, params) if generator and params is not None else None
                presets[key] = (params, size) if params is not None and size is not None \
                    and size <= MAX_BYTES else None
            preset = presets[key]
            draw = draw_of(item.seed, item.index, preset[0]) if preset is not None else None
            if preset is not None and draw is not None and generator is not None \
                    and affordable(generator, preset[0], draw):
                found.setdefault(item.generator, []).append((Rated(item, preset[0], 0.0, draw), preset[1]))
        return found

    def _untried(self, generator: Generator, rated: Sequence[Rated], served: str) -> list[int]:
        """Which of ``rated`` did not fail to render in the last RETRY_FAILED seconds."""
        now = time.monotonic()
        keys = self.appearance.keys(generator, rated, served)
        with self._lock:
            for key in [k for k, when in self._failed.items() if now - when >= RETRY_FAILED]:
                del self._failed[key]
            return [i for i, key in enumerate(keys) if key not in self._failed]

    def _render(self, generator: Generator, rated: Sequence[Rated], render: Render, served: str) -> int:
        """Renders ``rated`` (one by one if the whole chunk fails); how many are left for later."""
        try:
            self.appearance.features(generator, rated, render, served)
            return 0
        except Cancelled:  # the server stops: left for a later fit, nothing marked failed
            return len(rated)
        except Exception as exc:
            if len(rated) > 1:  # one bad artifact does not take its chunk with it
                return sum(self._render(generator, [r], render, served) for r in rated)
            log.warning("could not render an artifact of %s to describe it: %s", generator.name, exc)
            with self._lock:  # kept here, never in the shared cache: the failure may pass
                self._failed[self.appearance.keys(generator, rated, served)[0]] = time.monotonic()
            return 0

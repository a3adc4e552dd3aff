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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel

from ..engine.generator import Cancelled, Generator, Media
from ..engine.latent import Variations, draw_of
from ..engine.steering import Render, models_served
from .appearance import Appearance, Key, affordable, output_bytes
from .interactions import Item
from .media_features import HEIGHTS
from .steering import Rated, parameters_of

if TYPE_CHECKING:
    from ..engine.catalogue import Engine

log = logging.getLogger(__name__)

# A generator served here, how to render its draws, and the models it serves (their versions
# and digests: what a render makes changes with them).
Renderer = tuple[Generator, Render, str]
CHUNK = 8  # draws rendered between two looks at the clock (8 textures: about 1 s)
MAX_BYTES = 4 << 20  # an artifact whose one output takes more (a 1024 px RGBA texture) is not rendered
QUIET_POLL = 0.05  # seconds between two looks at whether calls are still coming
QUIET_WAIT = 2.0  # seconds a chunk waits for calls to stop at most
RETRY_FAILED = 600.0  # seconds before an artifact whose render failed is tried again
MESH_WIDTH = 6 + HEIGHTS  # media_features.mesh_features: 3 extents, 3 radius figures, the heights
MEASURES = ("brightness", "contrast", "colour", "edges", "warmth", "coverage", "height", "depth", "girth",
            "roughness")


def engine_renderer(engine: Engine, stop: threading.Event | None = None) -> Callable[[str], Renderer | None]:
    """Renderers of ``engine``'s served latent generators whose models are ready (their renders
    end when ``stop`` is set)."""
    def renderer(name: str) -> Renderer | None:
        found = engine.generators.get(name)
        if found is None or found.latent_shape is None or not engine.available(found):
            return None

        def render(params: BaseModel, count: int) -> list[Media]:
            return engine.render(found, params, count, engine.state(found, found.formats[0], stop))
        return found, render, models_served(engine.models_of(found))
    return renderer


def measured(vector: np.ndarray) -> np.ndarray:
    """The named MEASURES of a media_features vector (an image's or a mesh's; the other kind's 0)."""
    v = [float(x) for x in vector[:11]]
    found = np.zeros(len(MEASURES))
    if len(vector) == MESH_WIDTH:
        found[6:] = [v[1], min(v[2] / max(v[0], 1e-3), 1e3), v[3], v[5]]  # a flat prop is no outlier
    else:
        found[:6] = [v[6], v[7], v[8], v[9], v[0] - v[2], v[10]]
    return found


@dataclass(frozen=True)
class Described:
    """What a fit knows of its items' looks: sha256 -> MEASURES, how many are left to render, and
    the models each generator's looks were rendered with (generator -> their names and digests)."""

    looks: dict[str, np.ndarray]
    left: int
    served: dict[str, str]
    retry_at: float = 0.0  # time.monotonic() when an artifact whose render failed may be tried again


class Looks:
    """Renders a key's artifacts of latent generators, a few seconds' worth per background fit."""

    def __init__(self, appearance: Appearance, renderer: Callable[[str], Renderer | None],
                 seconds: float, stop: threading.Event | None = None) -> None:
        self.busy: Callable[[], bool] = lambda: False  # calls are being answered: renders wait
        self.appearance = appearance
        self.renderer = renderer
        self.seconds = seconds  # 0: no looks at all
        self.stop = stop or threading.Event()  # set when the server stops: renders end early
        self._failed: dict[Key, float] = {}  # cache key -> when it failed
        self._lock = threading.Lock()

    def describe(self, items: Sequence[Item], known: Mapping[str, np.ndarray] | None = None,
                 render: bool = True, known_served: Mapping[str, str] | None = None) -> Described:
        """MEASURES of each of ``items`` known, kept or rendered now, and how many are left.

        ``known``: sha256 -> measures from the key's last fit, made with the models
        ``known_served`` names per generator (those of a generator whose models changed since are
        described again). Without ``render`` (a fit that answers a call) nothing else is looked
        up: the count left is of the items not known, for a fit in the background to settle."""
        if self.seconds <= 0:
            return Described({}, 0, {})
        known, known_served = known or {}, known_served or {}
        if not render:
            left = sum(1 for item in items if item.generator and item.sha256 not in known)
            return Described(dict(known), left, dict(known_served))
        # Each generator's renderer, looked up once per fit: the models it serves may change meanwhile.
        renderers = {name: self.renderer(name) for name in {item.generator for item in items} if name}
        served_now = {name: got[2] if got is not None else "" for name, got in renderers.items()}
        # Looks kept: rendered by the models serving now, or by any of a generator not rendered now.
        kept = {item.sha256 for item in items if item.sha256 in known
                and served_now.get(item.generator) in ("", known_served.get(item.generator))}
        found: dict[str, np.ndarray] = {sha: known[sha] for sha in kept}
        plans = []  # per generator: what to render, and how to read back what is known
        unknown = [item for item in items if item.sha256 not in kept]
        for name, sized in self._latent(unknown, renderers).items():
            renderer = renderers[name]
            assert renderer is not None  # _latent keeps the generators rendered here only
            generator, make, served = renderer
            rated = [r for r, _ in sized]
            keys = self.appearance.keys(generator, rated, served)
            untried = set(self.appearance.missing_keys(keys)) & set(self._untried(keys))
            missing = sorted(untried, key=lambda i: (keys[i][2], i))  # one render per preset
            plans.append((generator, make, served, rated, keys, missing))
        left, began = 0, False
        deadline = time.monotonic() + self.seconds  # after the bookkeeping: the budget is for renders
        chunks = [(plan, start) for plan in plans for start in range(0, len(plan[5]), CHUNK)]
        chunks.sort(key=lambda chunk: chunk[1])  # each generator in turn, a chunk at a time
        for number, ((generator, make, served, rated, _, missing), start) in enumerate(chunks):
            if not self._quiet(deadline) or (began and time.monotonic() >= deadline):
                left += sum(min(CHUNK, len(plan[5]) - at) for plan, at in chunks[number:])
                break  # one chunk at least, once quiet: every background fit gets on
            began = True
            left += self._render(generator, [rated[i] for i in missing[start:start + CHUNK]], make, served,
                                 found)
        for _, _, _, rated, keys, _ in plans:  # and what was rendered before, for this key or another
            for r, vector in zip(rated, self.appearance.known_keys(keys), strict=True):
                if vector is not None and r.item.sha256 not in found:
                    found[r.item.sha256] = measured(vector)
        # A generator not rendered now keeps the models its looks were rendered with while it has
        # no item left to describe; with one, "" makes it change (and be refitted) once it is back.
        waiting = {item.generator for item in items if item.sha256 not in found}
        return Described(found, left, {name: now or ("" if name in waiting else known_served.get(name, ""))
                                       for name, now in served_now.items()},
                         self._retry_at(plan[4] for plan in plans))

    def served(self, name: str) -> str:
        """The models ``name``'s renders are made with now ("": it is not rendered here now)."""
        got = self.renderer(name)
        return got[2] if got is not None else ""

    def changed(self, served: Mapping[str, str]) -> bool:
        """Whether a generator of ``served`` (a fit's ``Described.served``) is rendered by other
        models now: loaded since, or reloaded. One not rendered now changes nothing (its looks stay)."""
        return self.seconds > 0 and any((now := self.served(name)) and now != was
                                        for name, was in served.items())

    def _quiet(self, deadline: float) -> bool:
        """Waits while calls are being answered (they come first: a render holds the cores), up to
        QUIET_WAIT or ``deadline``, so a steady stream of calls slows the renders but never stops
        them; False if the server stops meanwhile."""
        until = min(deadline, time.monotonic() + QUIET_WAIT)
        while self.busy() and time.monotonic() < until and not self.stop.is_set():
            time.sleep(QUIET_POLL)
        return not self.stop.is_set()

    def _latent(self, items: Sequence[Item], renderers: Mapping[str, Renderer | None]
                ) -> dict[str, list[tuple[Rated, int]]]:
        """The items whose provenance names an affordable latent of a generator served here, by
        generator, each with the raw bytes of its output."""
        found: dict[str, list[tuple[Rated, int]]] = {}
        generators: dict[str, Generator | None] = {}
        presets: dict[tuple[str, str], tuple[Variations, int] | None] = {}
        for item in items:
            if not item.generator:
                continue
            if item.generator not in generators:
                served = renderers.get(item.generator)
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

    def _untried(self, keys: Sequence[Key]) -> list[int]:
        """Which of ``keys`` did not fail to render in the last RETRY_FAILED seconds."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, when in self._failed.items() if now - when >= RETRY_FAILED]:
                del self._failed[key]
            return [i for i, key in enumerate(keys) if key not in self._failed]

    def _retry_at(self, keys: Iterable[Sequence[Key]]) -> float:
        """When the first of ``keys`` (per generator) that failed to render may be tried again (0:
        none failed)."""
        with self._lock:
            if not self._failed:  # the usual case: no pass over a big key's artifacts
                return 0.0
            failed = [when for part in keys for key in part if (when := self._failed.get(key)) is not None]
        return min(failed) + RETRY_FAILED if failed else 0.0

    def _render(self, generator: Generator, rated: Sequence[Rated], render: Render, served: str,
                found: dict[str, np.ndarray]) -> int:
        """Renders ``rated`` (one by one if the whole chunk fails) into ``found`` (straight away: the
        shared cache may drop them before the fit ends); how many are left for later."""
        try:
            made = self.appearance.features(generator, rated, render, served)
        except Cancelled:  # the server stops: left for a later fit, nothing marked failed
            return len(rated)
        except Exception as exc:
            if len(rated) > 1:  # one bad artifact does not take its chunk with it
                return sum(self._render(generator, [r], render, served, found) for r in rated)
            log.warning("could not render an artifact of %s to describe it: %s", generator.name, exc)
            with self._lock:  # kept here, never in the shared cache: the failure may pass
                self._failed[self.appearance.keys(generator, rated, served)[0]] = time.monotonic()
            return 0
        found.update({r.item.sha256: measured(vector) for r, vector in zip(rated, made, strict=True)
                      if vector is not None})
        return 0

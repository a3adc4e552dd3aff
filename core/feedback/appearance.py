"""What artifacts look like, rendered again from their provenance once per server process.

Steering (what a user rated, to fit their reward model) and recommendations (what each of
a key's artifacts looks like, as features) both need it; one cache serves both. Entries are
keyed by what renders the output (the generator, the models served, the parameters and the
draw), never by the sha256 a caller sent with them: one key's events must not decide what an
artifact looks like for another's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..engine.generator import Generator
from ..engine.latent import Draw, Variations
from ..engine.steering import Render
from .media_features import media_features

if TYPE_CHECKING:
    from .steering import Rated

SEEN_CACHE = 50_000  # artifacts' features kept per process
BATCH = 128  # draws rendered in one call at most
BATCH_BYTES = 8 << 20  # and their raw output at most (one output alone may pass it)
# The noise behind one draw: numpy draws a stream up to the draw's index, at every level of its
# `near` chain, so a caller's provenance could name gigabytes of it (a request's draws_bound
# refuses that; provenance comes from events, so it is bounded here).
MAX_NOISE_BYTES = 64 << 20  # 16 x 16 sheets of tiles at their last index, 2048 px textures 14 deep

Key = tuple[str, str, str, str]


def output_bytes(generator: Generator, params: Variations) -> int | None:
    """The raw bytes of one output (0 when the generator does not say); None if it cannot tell."""
    if generator.estimate is None:
        return 0
    try:
        return int(generator.estimate(params, 1).bytes)
    except Exception:  # a plugin that cannot size these parameters is not asked to render them
        return None


def affordable(generator: Generator, params: Variations, draw: Draw) -> bool:
    """Whether the noise behind ``draw`` stays within MAX_NOISE_BYTES (float64, as numpy draws it)."""
    if generator.latent_shape is None:
        return False
    try:
        size = int(np.prod([int(side) for side in generator.latent_shape(params)]))
    except Exception:  # a plugin that cannot shape these parameters is not asked to draw them
        return False
    return draw.cost() * size * 8 <= MAX_NOISE_BYTES


def rendered(render: Render, params: Variations, draws: Sequence[Draw]) -> np.ndarray:
    """The features of what ``draws`` make with ``params`` (rows in order); a row of NaN for an
    output with nothing to describe."""
    media = render(params.model_copy(update={"draws": list(draws), "preference": None}), len(draws))
    found = {m.index: media_features(m) for m in media if not m.part}
    rows = [found.get(i) for i in range(len(draws))]
    width = next((len(r) for r in rows if r is not None), 1)
    return np.stack([np.full(width, np.nan) if r is None or not np.isfinite(r).all() else r for r in rows])


class Appearance:
    """Features of rendered artifacts, the newest SEEN_CACHE kept; safe to share between threads."""

    def __init__(self, size: int = SEEN_CACHE) -> None:
        self.size = size
        self._seen: OrderedDict[Key, np.ndarray | None] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def keys(generator: Generator, rated: Sequence[Rated], served: str = "") -> list[Key]:
        return [(generator.name, served, r.params.model_dump_json(exclude={"draws", "preference"}),
                 r.draw.model_dump_json()) for r in rated]

    def missing(self, generator: Generator, rated: Sequence[Rated], served: str = "") -> list[int]:
        """Which of ``rated`` were never rendered here (with these models ``served``)."""
        return self.missing_keys(self.keys(generator, rated, served))

    def missing_keys(self, keys: Sequence[Key]) -> list[int]:
        with self._lock:
            return [i for i, key in enumerate(keys) if key not in self._seen]

    def known_keys(self, keys: Sequence[Key]) -> list[np.ndarray | None]:
        """What each of ``keys`` looks like, as far as rendered before; None for the rest."""
        with self._lock:
            return [self._seen.get(key) for key in keys]

    def features(self, generator: Generator, rated: Sequence[Rated],
                 render: Render, served: str = "") -> list[np.ndarray | None]:
        """What each of ``rated`` looks like, rendering those not seen before (one render per set
        of parameters, in batches of at most BATCH outputs and BATCH_BYTES). None for one whose
        output has nothing to describe. A render that fails raises; what rendered before it is kept."""
        keys = self.keys(generator, rated, served)
        missing = self.missing_keys(keys)
        groups: dict[str, list[int]] = {}  # rendering drops preference: one render per parameters
        for i in missing:
            groups.setdefault(keys[i][2], []).append(i)
        made: dict[Key, np.ndarray | None] = {}
        try:
            for members in groups.values():
                size = output_bytes(generator, rated[members[0]].params) or 0
                batch = max(1, min(BATCH, BATCH_BYTES // max(size, 1)))
                for start in range(0, len(members), batch):
                    part = members[start:start + batch]
                    x = rendered(render, rated[part[0]].params, [rated[i].draw for i in part])
                    made.update({keys[i]: None if np.isnan(row).any() else row
                                 for i, row in zip(part, x, strict=True)})
        finally:  # what rendered before a failure is kept
            self._keep(made)
        with self._lock:
            for key in keys:
                if key in self._seen:
                    self._seen.move_to_end(key)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return [self._seen.get(key, made.get(key)) for key in keys]

    def _keep(self, made: dict[Key, np.ndarray | None]) -> None:
        with self._lock:
            for key, found in made.items():  # a racing render's result stands if this one found nothing
                if found is not None or key not in self._seen:
                    self._seen[key] = found


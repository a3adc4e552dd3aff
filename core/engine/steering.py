"""Steered generation as the engine sees it: a request's ``preference`` handed to whatever
keeps the users' feedback, which answers with the exact draws to make.

The engine knows no feedback store; the server plugs one in (``Engine.steerer``). What a
steerer returns is an ordinary request with ``draws`` filled in and ``preference`` gone, so
its provenance regenerates the same artifacts without the feedback that chose them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .generator import Generator, Media
from .latent import Variations

if TYPE_CHECKING:
    from ..runtime.sessions import LoadedModel

# (params with draws, count) -> the raw media the generator makes of them, parts left out:
# how a steerer sees what a latent looks like.
Render = Callable[[Variations, int], list[Media]]


def models_served(models: Iterable[LoadedModel]) -> str:
    """Models with their versions and digests: what a generator's renders change with."""
    return " ".join(f"{m.name}@{m.version}:{m.sha256}" for m in models)


@dataclass(frozen=True)
class Steered:
    """The parameters to run (``draws`` set, ``preference`` None) and what chose them, as
    provenance records it (JSON: the user, how many of their ratings were used, candidates)."""

    params: Variations
    note: str


class Steerer(Protocol):
    def steer(self, owner: str, generator: Generator, params: Variations, seed: int, count: int,
              render: Render, served: str = "") -> Steered:
        """Choose ``count`` draws for ``params.preference``, a user of ``owner`` (an API key's id,
        "" with auth off); ``render`` shows what draws look like, with the models ``served`` names
        (their versions and digests: what ``render`` makes changes with them). Runs in a worker thread."""
        ...

"""Feedback events as a recommender reads them: who liked what how much, and what each artifact is.

Each event becomes signed weights on (user, artifact) pairs:

- thumbs up +1, thumbs down -1;
- stars (s - 3) / 2: 5 stars +1, 4 +0.5, 3 nothing, 2 -0.5, 1 -1;
- a keep (saved or downloaded) +1;
- a pick: the chosen artifact +1, every other candidate shown beside it -0.25 (passed
  over once is a mild no, not a dislike);
- shown (an impression) 0: seen, and in the catalogue, with no opinion.

A pair's weights add up over time. What a user has been shown or rated, liked or not, is
"seen": recommending it again would tell them nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .store import StoredEvent

THUMBS, STARS, PICK, KEEP, SHOWN = 1, 2, 3, 4, 5  # museforge.v1.FeedbackKind
# Parameters that name one artifact's latent (steering writes them), not a preset to offer again.
PER_DRAW = frozenset({"draws", "preference"})
PASSED_OVER = -0.25


@dataclass(frozen=True)
class Item:
    """An artifact as its provenance describes it (the ArtifactRef fields, JSON-ready)."""

    sha256: str
    generator: str
    effect: str
    model_version: str
    seed: int
    parameters: Mapping[str, Any]
    index: int = 0  # which of its request's artifacts

    @property
    def maker(self) -> str:
        return self.generator or self.effect

    @property
    def preset(self) -> dict[str, Any]:
        """Its parameters but those naming its own latent: what another draw would be asked with."""
        return {name: value for name, value in self.parameters.items() if name not in PER_DRAW}

    def preset_key(self) -> str:
        """The generator and parameters, seed left out: one preset."""
        return json.dumps([self.maker, self.preset], sort_keys=True, separators=(",", ":"))

    def ref(self) -> dict[str, Any]:
        """proto3 JSON of its ArtifactRef."""
        found: dict[str, Any] = {"sha256": self.sha256}
        for name, value in (("generator", self.generator), ("effect", self.effect),
                            ("modelVersion", self.model_version)):
            if value:
                found[name] = value
        if self.seed:
            found["seed"] = str(self.seed)
        if self.index:
            found["index"] = self.index
        if self.parameters:
            found["parameters"] = dict(self.parameters)
        return found


@dataclass
class Interactions:
    """Signed weights per user and artifact, and every artifact met, in order of first appearance."""

    weights: dict[str, dict[str, float]] = field(default_factory=dict)  # user -> sha256 -> weight
    items: dict[str, Item] = field(default_factory=dict)
    events: int = 0

    def add(self, user: str, item: Item, weight: float) -> None:
        known = self.items.get(item.sha256)
        if known is None or (not known.maker and item.maker):  # a bare sha256 first, its provenance later
            self.items[item.sha256] = item
        row = self.weights.setdefault(user, {})
        row[item.sha256] = row.get(item.sha256, 0.0) + weight

    def liked(self, user: str) -> dict[str, float]:
        return {sha: w for sha, w in self.weights.get(user, {}).items() if w > 0}

    def seen(self, user: str) -> set[str]:
        return set(self.weights.get(user, {}))


def item_of(ref: Mapping[str, Any]) -> Item:
    """An Item from an ArtifactRef as the store keeps it (proto3 JSON)."""
    parameters = ref.get("parameters") or {}
    return Item(
        sha256=str(ref.get("sha256", "")),
        generator=str(ref.get("generator", "")),
        effect=str(ref.get("effect", "")),
        model_version=str(ref.get("modelVersion", "")),
        seed=int(ref.get("seed", 0) or 0),
        parameters=parameters if isinstance(parameters, dict) else {},
        index=int(ref.get("index", 0) or 0),
    )


def interactions(events: Iterable[StoredEvent]) -> Interactions:
    found = Interactions()
    for event in events:
        found.events += 1
        body = event.body
        chosen = item_of(body.get("artifact") or {})
        if event.kind == PICK:
            candidates = [item_of(c) for c in body.get("candidates") or []]
            for candidate in candidates:
                if candidate.sha256 == chosen.sha256:
                    found.add(event.user, candidate, 1.0)
                else:
                    found.add(event.user, candidate, PASSED_OVER)
            continue
        if event.kind == THUMBS:
            weight = 1.0 if body.get("thumb") in ("THUMB_UP", 1) else -1.0
        elif event.kind == STARS:
            weight = (int(body.get("stars", 3)) - 3) / 2.0
        elif event.kind == KEEP:
            weight = 1.0
        elif event.kind == SHOWN:
            weight = 0.0
        else:
            continue
        found.add(event.user, chosen, weight)
    return found

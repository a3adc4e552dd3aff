"""What every item of one job does, as its stored spec says: a frame through the steps, or for
a job over a video file, a range of its frames (and, last, the join of the ranges).

Every executor runs items through here, so a frame or a range comes out byte-identical
whichever ran it, and however often it was retried.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.catalogue import Engine
from .chain import FrameLimits, run_frame
from .paths import Sandbox
from .plan import Step, steps_of
from .store import Item, ItemState
from .video_items import VideoJob, range_item


@dataclass(frozen=True)
class ItemWork:
    steps: tuple[Step, ...]
    seed: int
    fmt: str
    video: VideoJob | None  # a job over a video file: its shape

    @classmethod
    def of(cls, spec: dict[str, Any]) -> ItemWork:
        return cls(steps_of(spec), int(spec["seed"]), str(spec.get("format", "")), VideoJob.of(spec))

    def side_by_side(self, items: Sequence[Item], total: int) -> list[Item]:
        """The items that may run at once: all, but a video job's join (its last), which waits for them."""
        return [i for i in items if self.video is None or i.index != total - 1]

    def run(
        self,
        engine: Engine,
        sandbox: Sandbox,
        item: Item,
        halt: threading.Event,
        limits: FrameLimits,
    ) -> tuple[ItemState | None, str]:
        """DONE, FAILED with the reason, or None when ``halt`` stopped it (nothing written, still pending)."""
        if self.video is not None:
            return range_item(engine, sandbox, self.video, self.steps, self.seed, item.frame, halt, limits)
        return run_frame(
            engine, sandbox, self.steps, item.input, item.output, self.fmt, self.seed, halt, limits
        )

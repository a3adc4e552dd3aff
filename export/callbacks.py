"""What a training run reports to: a progress callback and a checkpoint store, typed once here."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm


class Progress(Protocol):
    """``progress(step, total, metrics)``: called once before the first step with the step the run
    starts after (0, or the checkpoint's step on a resume) and no metrics, then every few steps and
    after the last one."""

    def __call__(self, step: int, total: int, metrics: Mapping[str, float], /) -> None: ...


class CheckpointStore(Protocol):
    """Where a run saves its state every so often, and finds the latest one again to resume."""

    def save(self, step: int, state: Mapping[str, Any]) -> Path | None: ...

    def latest(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Hooks:
    """A trainer's callbacks; both optional (a bare trainer call reports nothing, saves nothing)."""

    progress: Progress | None = None
    checkpoints: CheckpointStore | None = None


class ProgressBar:
    """A tqdm bar fed by a recipe's ``progress(step, total, metrics)`` callback.

    The bar opens at the step of the loop's first report, so a resumed run's count and percentage
    are right at once and its rate and time left come from the steps run in this process alone.
    """

    def __init__(self, description: str, enabled: bool = True) -> None:
        self.description = description
        self.enabled = enabled
        self.resumed: tuple[int, int] | None = None  # (after step, of total) when a run resumed
        self._open = False
        self._bar: tqdm[Any] | None = None

    def __call__(self, step: int, total: int, metrics: Mapping[str, float]) -> None:
        if not self._open:
            self._open = True
            # No metrics: the loop's report before its first step. With metrics: a recipe reporting
            # its own loop, whose steps so far ran in this process.
            start = 0 if metrics else step
            if start > 0:
                self.resumed = (start, total)
            if self.enabled:
                description = self.description + (f", resumed after step {start}" if start else "")
                # Into a log (not a terminal) a line every 30 s, not one per step.
                self._bar = tqdm(total=total, initial=start, desc=description, unit="step", file=sys.stderr,
                                 dynamic_ncols=True, mininterval=0.1 if sys.stderr.isatty() else 30.0)
        if self._bar is not None:
            if metrics:
                self._bar.set_postfix({k: f"{v:.3f}" for k, v in metrics.items()}, refresh=False)
            self._bar.update(step - self._bar.n)  # tqdm draws when its interval has passed
        if step >= total:  # closed now: its last line's time and rate are the training's alone
            self.close()

    def close(self) -> None:
        self._open = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Checkpoints:
    """Saves training state every so often so a long run can be inspected or resumed.

    Checkpoints are a training artefact only: the server loads ONNX, never these.
    """

    def __init__(self, directory: Path | None, keep: int = 2) -> None:
        self.directory = directory
        self.keep = keep

    def save(self, step: int, state: Mapping[str, Any]) -> Path | None:
        if self.directory is None:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"step-{step:08d}.pt"
        torch.save(dict(state), path)
        for old in sorted(self.directory.glob("step-*.pt"))[: -self.keep]:
            old.unlink()
        return path

    def latest(self) -> dict[str, Any] | None:
        if self.directory is None:
            return None
        found = sorted(self.directory.glob("step-*.pt"))
        return torch.load(found[-1], weights_only=True) if found else None

"""The training loop every recipe runs: steps, smoothed progress, checkpoints and resume.

``Loop`` drives any step function (a GAN's two updates, one optimiser step, ...);
``fit`` is the common case on top of it: one model, one optimiser, a warm-up + cosine
schedule and optional gradient clipping. A checkpoint holds every part's state, the
step and the run's random streams, so a resumed run ends with exactly the weights of
an uninterrupted one.
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from .callbacks import Hooks
from .schedule import Schedule
from .seeds import Streams

StepFn = Callable[[int], Mapping[str, float]]  # 1-based step -> metrics to show
LossFn = Callable[[int], tuple[Tensor, Mapping[str, float]]]  # 1-based step -> (loss, metrics)
SMOOTHING = 0.05  # weight of the newest value in the metrics shown


class Stateful(Protocol):
    """A module, optimiser or scheduler: whatever a checkpoint saves and a resume loads."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any], /) -> Any: ...


def report_interval(steps: int) -> int:
    """Steps between progress reports: about a hundred reports, at least every 25 steps."""
    return max(1, min(25, steps // 100))


class StoppedWithCheckpoint(KeyboardInterrupt):
    """Ctrl-C during a run with checkpoints: the step under way was finished and saved (``path``,
    None when the store keeps none), so the same command resumes after it."""

    def __init__(self, step: int, steps: int, path: Path | None) -> None:
        where = f"; saved {path}: run the same command to resume" if path is not None else ""
        super().__init__(f"stopped after step {step} of {steps}{where}")
        self.step, self.steps, self.path = step, steps, path


@contextmanager
def deferred_stop(enabled: bool) -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM instead of raising at once; a second one raises at once.
    Only in the main thread (signals reach no other) and only when ``enabled``."""
    asked = threading.Event()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield asked
        return

    def ask(signum: int, frame: object) -> None:
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()
        print("\nstopping after this step to save a checkpoint (again to stop at once)",
              file=sys.stderr, flush=True)

    before = {sig: signal.signal(sig, ask) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield asked
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@dataclass
class Loop:
    """Runs ``step(i)`` for i = 1..steps, reporting and checkpointing ``parts`` as it goes."""

    steps: int
    parts: Mapping[str, Stateful]
    streams: Streams
    hooks: Hooks = field(default_factory=Hooks)
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")

    def run(self, step: StepFn) -> None:
        progress, checkpoints = self.hooks.progress, self.hooks.checkpoints
        every = report_interval(self.steps)
        shown: dict[str, float] = {}
        # With checkpoints, Ctrl-C (or SIGTERM) ends the run after the step under way, saving it:
        # a state saved mid-step would not resume to the weights an uninterrupted run ends with.
        with deferred_stop(checkpoints is not None) as asked:
            start = self.resume()
            if progress is not None:  # the bar opens here: at the resumed step, timing only this run
                progress(start, self.steps, {})
            for i in range(start + 1, self.steps + 1):
                for key, value in step(i).items():
                    shown[key] = value if key not in shown else shown[key] + (value - shown[key]) * SMOOTHING
                if progress is not None and (i % every == 0 or i == self.steps):
                    progress(i, self.steps, dict(shown))
                if checkpoints is not None and (i % self.checkpoint_every == 0 or asked.is_set()):
                    saved = checkpoints.save(i, self.state(i))
                    if asked.is_set():
                        raise StoppedWithCheckpoint(i, self.steps, saved)
            if asked.is_set():  # asked between the last step's check and here: stop all the same
                assert checkpoints is not None  # only a run with checkpoints defers a stop
                saved = checkpoints.save(self.steps, self.state(self.steps))
                raise StoppedWithCheckpoint(self.steps, self.steps, saved)

    def run_key(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed from: the same seed, run length and parts."""
        return {"seed": self.streams.seed, "steps": self.steps, "parts": sorted(self.parts)}

    def state(self, step: int) -> dict[str, Any]:
        return {**{name: part.state_dict() for name, part in self.parts.items()},
                "step": step, "random": self.streams.state(), "run": self.run_key()}

    def resume(self) -> int:
        """Load the latest matching checkpoint, if any; returns the steps it had done."""
        saved = self.hooks.checkpoints.latest() if self.hooks.checkpoints is not None else None
        if saved is None:
            return 0
        if saved.get("run") != self.run_key():
            warnings.warn("the checkpoint directory holds another run's checkpoints; starting afresh",
                          stacklevel=2)
            return 0
        for name, part in self.parts.items():
            part.load_state_dict(saved[name])
        self.streams.restore(saved["random"])
        if self.hooks.progress is not None:  # a run that reports: say where it picks up
            print(f"resuming from the checkpoint after step {int(saved['step'])} of {self.steps}",
                  file=sys.stderr, flush=True)
        return int(saved["step"])


def update(optimizer: torch.optim.Optimizer, loss: Tensor,
           clip: tuple[nn.Module, float] | None = None) -> None:
    """One optimiser step on ``loss``; ``clip``: (model, max norm) for gradient-norm clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(clip[0].parameters(), clip[1])
    optimizer.step()


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, loss: LossFn, *, steps: int, streams: Streams,
        schedule: Schedule | None = None, clip: float | None = None, hooks: Hooks | None = None,
        checkpoint_every: int = 500) -> nn.Module:
    """Train ``model`` in place on ``loss(step)``, the rate following ``schedule`` (default warm-up
    over 2% of the steps, cosine to 0); returns it in eval mode."""
    scheduler = (schedule or Schedule()).attach(optimizer, steps)
    limit = (model, clip) if clip is not None else None

    def step(i: int) -> Mapping[str, float]:
        value, metrics = loss(i)
        update(optimizer, value, limit)
        scheduler.step()
        return metrics

    loop = Loop(steps, {"model": model, "optimizer": optimizer, "schedule": scheduler}, streams,
                hooks or Hooks(), checkpoint_every)
    model.train()
    loop.run(step)
    return model.eval()

"""One model's session run: quiet options, the arena's shrink for outliers, and a stop for runs
long enough to be worth one (see :mod:`museforge.runtime.stop`)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail as OrtFail
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument as OrtInvalidArgument

from .arena import ArenaPolicy
from .batcher import RunFn
from .model_checks import TensorSpec, refusal
from .stop import RunStopped, StoppableRun

# A run that fails is reported once, by us (to its caller, and in our log for a fault of
# ours), not also by ONNX Runtime on stderr, where any caller could flood it.
QUIET = ort.RunOptions()
QUIET.log_severity_level = 4

# Runs on less input are over in a moment (a music step, a digit): options and listeners of
# their own would cost more than stopping them could save.
STOPPABLE_BYTES = 16 * 1024


def session_runner(name: str, session: ort.InferenceSession, inputs: tuple[TensorSpec, ...],
                   outputs: Sequence[str], arena: ArenaPolicy) -> RunFn:
    """``run(feed, stops=())``: the outputs by name; RunStopped when every one of ``stops`` was set
    while it ran; ModelRefused (a ValueError) for inputs the network cannot take."""
    names = list(outputs)

    def run(feed: Mapping[str, np.ndarray], stops: Sequence[threading.Event | None] = ()
            ) -> dict[str, np.ndarray]:
        nbytes = sum(a.nbytes for a in feed.values())
        if nbytes < STOPPABLE_BYTES or not StoppableRun.wanted(stops):
            return attempt(feed, arena.run_options(nbytes) or QUIET, None)
        entries = arena.shrink_entries if arena.outlier(nbytes) else {}
        with StoppableRun(stops, entries) as stoppable:
            return attempt(feed, stoppable.options, stoppable)

    def attempt(feed: Mapping[str, np.ndarray], options: ort.RunOptions,
                stoppable: StoppableRun | None) -> dict[str, np.ndarray]:
        try:
            values = session.run(names, dict(feed), options)
        except (OrtInvalidArgument, OrtFail) as exc:  # inputs the network cannot take
            if stoppable is not None and stoppable.stopped:
                raise RunStopped(f"model {name}: the run was stopped: every request in it was "
                                 "cancelled") from None
            raise refusal(inputs, exc) from None
        return dict(zip(names, values, strict=True))

    return run

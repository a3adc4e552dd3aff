"""Stopping a model run that nobody waits for any more.

A generator checks its cancel flag between model calls, but one call can be long (a 2048-px
texture runs for seconds): without this, a cancelled or timed-out request keeps its core busy
to the end of that run. ONNX Runtime stops a run between two nodes when its RunOptions'
``terminate`` is set, so a run whose every request carries a :class:`StopSignal` is given
options of its own, terminated once all of those signals are set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import onnxruntime as ort


class StopSignal(threading.Event):
    """A cancel flag that also tells listeners when it is set (from any thread)."""

    def __init__(self) -> None:
        super().__init__()
        self._listeners: list[Callable[[], None]] = []
        self._guard = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._guard:
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener()

    def listen(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` once when set (now, if it already is); returns the way to stop listening."""
        with self._guard:
            if not self.is_set():
                self._listeners.append(listener)
                return lambda: self._forget(listener)
        listener()
        return lambda: None

    def _forget(self, listener: Callable[[], None]) -> None:
        with self._guard:
            if listener in self._listeners:
                self._listeners.remove(listener)


class RunStopped(RuntimeError):
    """Every request of a run was cancelled, so the run was terminated before its end."""


class StoppableRun:
    """Run options terminated once every one of ``stops`` is set; a context manager around one run."""

    def __init__(self, stops: Sequence[threading.Event | None], entries: dict[str, str]) -> None:
        self.options = ort.RunOptions()  # its own: terminating shared options would stop others' runs
        self.options.log_severity_level = 4  # a stopped run is no error to log
        for key, value in entries.items():
            self.options.add_run_config_entry(key, value)
        # One request's signal once, however many of its rows the batch holds.
        self._stops = list(dict.fromkeys(s for s in stops if isinstance(s, StopSignal)))
        self._left = len(self._stops)
        self._lock = threading.Lock()
        self._forget: list[Callable[[], None]] = []

    @staticmethod
    def wanted(stops: Sequence[threading.Event | None]) -> bool:
        """Only a run whose every request can say it was abandoned can be stopped."""
        return bool(stops) and all(isinstance(s, StopSignal) for s in stops)

    def _one_stopped(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.options.terminate = True

    def __enter__(self) -> StoppableRun:
        self._forget = [stop.listen(self._one_stopped) for stop in self._stops]
        return self

    def __exit__(self, *exc: object) -> None:
        for forget in self._forget:
            forget()

    @property
    def stopped(self) -> bool:
        return bool(self.options.terminate)

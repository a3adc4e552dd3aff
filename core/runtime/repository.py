"""The model repository: every model's state, and loading, reloading and unloading one while serving.

A reload builds and warms a session for the model's newest version beside the serving one,
then swaps the ``Runtime.models`` entry (one reference assignment, atomic for every reader):
new requests take the new model, requests that already hold the old one finish on it. The
old batcher is closed (it drains what was admitted, then its workers stop) and the runtime
drops its references, so the old session is freed when its last request returns. Readers
never lock: a request reads the entry once; only loads and unloads of one model serialise.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from .manifest import IntegrityError

if TYPE_CHECKING:
    from .sessions import LoadedModel, Runtime

log = logging.getLogger("museforge.runtime")

UNLOADED = "it is unloaded; load it with RepositoryModelLoad"


class ModelState(str, Enum):
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"
    LOADING = "LOADING"


@dataclass(frozen=True)
class ModelStatus:
    """One entry of the repository index (version "" when none ever loaded)."""

    name: str
    version: str
    state: ModelState
    reason: str


class UnknownModel(LookupError):
    """No generator declared a model of that name."""


class LoadRefused(RuntimeError):
    """The newest version cannot serve; the model keeps what it had (the message says why)."""


def contract(model: LoadedModel) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """What callers rely on: every input's and output's name, dtype and shape."""
    return tuple((s.name, str(s.dtype), s.shape) for s in (*model.inputs, *model.outputs))


class ModelRepository:
    """Loads, reloads and unloads the runtime's models; the per-model state for the index."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._loading: dict[str, str] = {}  # model name -> what is being loaded

    def _lock_of(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _known(self, name: str) -> LoadedModel:
        model = self.runtime.models.get(name)
        if model is None:
            known = ", ".join(sorted(self.runtime.models)) or "none"
            raise UnknownModel(f"unknown model {name!r}; models: {known}")
        return model

    def status(self, model: LoadedModel) -> ModelStatus:
        version = str(model.version) if model.version else ""
        loading = self._loading.get(model.name)
        if model.ready:
            return ModelStatus(model.name, version, ModelState.READY, loading or "")
        if loading is not None:
            return ModelStatus(model.name, version, ModelState.LOADING, loading)
        return ModelStatus(model.name, version, ModelState.UNAVAILABLE, model.error)

    def index(self, ready_only: bool = False) -> list[ModelStatus]:
        entries = [self.status(m) for m in list(self.runtime.models.values())]
        return [e for e in sorted(entries, key=lambda e: e.name)
                if not ready_only or e.state is ModelState.READY]

    def load(self, name: str) -> LoadedModel:
        """Load the newest version (or the pinned one) and swap it in; raises LoadRefused
        (the model keeps serving what it served, or stays unavailable) when it cannot serve."""
        self._known(name)
        with self._lock_of(name):
            current = self._known(name)
            self._loading[name] = "reloading" if current.ready else "loading"
            try:
                fresh = self._build(current)
            finally:
                del self._loading[name]
            self.runtime.models[name] = fresh  # the swap: new requests take the new session
            self._retire(current)
        log.info("model %s v%d loaded (was %s)", name, fresh.version,
                 f"v{current.version}" if current.ready else "unavailable")
        return fresh

    def _build(self, current: LoadedModel) -> LoadedModel:
        keeps = (f"version {current.version} keeps serving" if current.ready
                 else "the model stays unavailable")
        try:
            fresh = self.runtime.build(current.name, current.directory, current.pinned)
        except IntegrityError as exc:
            raise LoadRefused(f"model {current.name!r}: {exc}; {keeps}") from exc
        except Exception as exc:
            raise LoadRefused(f"model {current.name!r}: the newest version failed to load "
                              f"({type(exc).__name__}: {exc}); {keeps}") from exc
        if current.inputs and contract(fresh) != contract(current):
            self._retire(fresh)
            raise LoadRefused(
                f"model {current.name!r}: version {fresh.version} changes the inputs or outputs "
                f"({_describe(contract(current))} -> {_describe(contract(fresh))}); {keeps}")
        return fresh

    def unload(self, name: str) -> None:
        """Make the model unavailable and free its session; ``load`` brings it back."""
        self._known(name)
        with self._lock_of(name):
            current = self._known(name)
            if not current.ready:
                return
            self.runtime.models[name] = self.runtime.unavailable(current, UNLOADED)
            self._retire(current)
        log.info("model %s v%d unloaded", name, current.version)

    @staticmethod
    def _retire(model: LoadedModel) -> None:
        """Stop taking requests; those already admitted finish (the batcher drains first)."""
        if model.batcher is not None:
            model.batcher.close()


def _describe(tensors: tuple[tuple[str, str, tuple[int, ...]], ...]) -> str:
    return ", ".join(f"{name} {dtype}{list(shape)}" for name, dtype, shape in tensors)

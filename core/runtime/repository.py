"""The model repository: every model's state, and loading, reloading and unloading one while serving.

A reload builds and warms a session for every version the model's version policy serves
(see versions.py) beside the serving ones, then swaps the ``Runtime.versions`` and
``Runtime.models`` entries (reference assignments, atomic for every reader): new requests
take the new sessions, requests that already hold an old one finish on it. The old batchers
are closed (each drains what was admitted, then its workers stop) and the runtime drops its
references, so an old session is freed when its last request returns. Readers never lock:
a request reads an entry once; only loads and unloads of one model serialise.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from ..near_names import did_you_mean
from .model_source import ModelSource
from .versions import available_versions

if TYPE_CHECKING:
    from .sessions import LoadedModel, Runtime

log = logging.getLogger("museforge.runtime")


def unloaded(name: str) -> str:
    """Why an unloaded model answers UNAVAILABLE, and how to load it again (the RPC, the command)."""
    return f"it is unloaded; load it with RepositoryModelLoad (`museforge models load {name}`)"


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
    """A version the policy chose cannot serve; the model keeps what it had (the message says why)."""


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
            where = self.runtime.options.model_repository
            beside = f", nor has the model repository ({where}) a directory of that name" if where else ""
            near = did_you_mean(name, self.runtime.models)
            raise UnknownModel(f"unknown model {name!r}{near}; models: {known}{beside}")
        return model

    def _added(self, name: str) -> Path | None:
        """The directory of a model added without a plugin (``museforge models add``), if any."""
        root = self.runtime.options.model_repository
        if root is None or name in (".", "..") or "/" in name or "\\" in name:
            return None
        directory = root / name
        try:
            return directory if directory.is_dir() and available_versions(directory) else None
        except OSError:
            return None

    def load_added(self) -> None:
        """At start: serve every model of the model repository that no plugin declares."""
        root = self.runtime.options.model_repository
        if root is None or not root.is_dir():
            return
        for directory in sorted(root.iterdir()):
            if self._added(directory.name) is None:
                continue
            if directory.name in self.runtime.models:
                log.warning("model repository: %s is also a plugin's model; the plugin's is served",
                            directory)
                continue
            self.runtime.load(ModelSource(directory.name, directory))

    def _first_load(self, name: str) -> LoadedModel | None:
        """Triton's explicit mode: a name the server does not know yet, found in the repository."""
        directory = self._added(name)
        if directory is None:
            return None
        with self._lock_of(name):
            if name in self.runtime.models:
                return None  # another call added it meanwhile: load it as a known model
            model = self.runtime.load(ModelSource(name, directory))
            if not model.ready:
                del self.runtime.models[name]  # never served: not listed as a failed model
                raise LoadRefused(f"model {name!r} ({directory}): {model.error}")
        log.info("model %s added from %s", name, directory)
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
        """One entry per version serving (Triton lists versions apart), else the model's state."""
        entries = [self.status(m) for m in self.runtime.every_version()]
        return [e for e in sorted(entries, key=lambda e: e.name)  # stable: versions stay ascending
                if not ready_only or e.state is ModelState.READY]

    def load(self, name: str) -> LoadedModel:
        """Load the versions the policy serves and swap them in; raises LoadRefused (the model
        keeps serving what it served, or stays unavailable) when one of them cannot serve."""
        if name not in self.runtime.models and (added := self._first_load(name)) is not None:
            return added
        self._known(name)
        with self._lock_of(name):
            current = self._known(name)
            old = self.runtime.serving(name) if current.ready else {}
            self._loading[name] = "reloading" if current.ready else "loading"
            try:
                fresh = self._build(current, old)
            finally:
                del self._loading[name]
            self.runtime.serve(name, fresh)  # the swap: new requests take the new sessions
            for model in old.values():
                model.retire()
        log.info("model %s loaded: versions %s (was %s)", name, _versions(fresh),
                 _versions(old) if old else "unavailable")
        return self.runtime.models[name]

    def _build(self, current: LoadedModel, old: dict[int, LoadedModel]) -> dict[int, LoadedModel]:
        keeps = (f"version{'s' if len(old) > 1 else ''} {_versions(old)} "
                 f"keep{'' if len(old) > 1 else 's'} serving" if old else "the model stays unavailable")
        try:
            fresh = self.runtime.build(current.name, current.directory, current.pinned, current.threads)
        except Exception as exc:
            raise LoadRefused(f"model {current.name!r}: {exc}; {keeps}") from exc
        changed = [m for m in fresh.values() if current.inputs and contract(m) != contract(current)]
        if changed:
            for model in fresh.values():
                model.retire()
            raise LoadRefused(
                f"model {current.name!r}: version {changed[0].version} changes the inputs or outputs "
                f"({_describe(contract(current))} -> {_describe(contract(changed[0]))}); {keeps}")
        return fresh

    def unload(self, name: str) -> None:
        """Make the model unavailable and free its sessions; ``load`` brings it back."""
        self._known(name)
        with self._lock_of(name):
            current = self._known(name)
            if not current.ready:
                return
            old = self.runtime.serving(name)
            self.runtime.models[name] = current.unavailable(unloaded(name))
            self.runtime.versions[name] = {}
            for model in old.values():
                model.retire()
        log.info("model %s unloaded (versions %s)", name, _versions(old))



def _versions(models: dict[int, LoadedModel]) -> str:
    return ", ".join(map(str, sorted(models)))


def _describe(tensors: tuple[tuple[str, str, tuple[int, ...]], ...]) -> str:
    return ", ".join(f"{name} {dtype}{list(shape)}" for name, dtype, shape in tensors)

"""Plugin discovery and registration, with every failure isolated to its plugin.

Built-in plugins arrive through the same ``museforge`` entry points as a third
party's: nothing here knows their names.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, cast

import pluggy

from . import hookspecs
from .codecs.encoders import BUILTIN_ENCODERS, Encoder
from .effect import Effect
from .generator import Generator
from .recipe import Recipe

log = logging.getLogger("museforge.plugin_host")

ENTRY_POINT_GROUP = "museforge"
HOOK_NAMES = ("register_generators", "register_effects", "register_recipes", "register_encoders")


@dataclass
class PluginRecord:
    """What is known of one plugin: shown by the plugins command and ``ListPlugins``."""

    name: str
    version: str = ""
    source: str = "inline"
    hooks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    generators: list[str] = field(default_factory=list)
    effects: list[str] = field(default_factory=list)
    recipes: list[str] = field(default_factory=list)
    encoders: list[str] = field(default_factory=list)

    @property
    def error(self) -> str:
        return "; ".join(self.errors)


class _CoreEncoders:
    """The formats the core itself provides, registered like any plugin's."""

    @hookspecs.hookimpl
    def register_encoders(self, register: Callable[[Any], None]) -> None:
        for encoder in BUILTIN_ENCODERS:
            register(encoder)


@dataclass
class Catalogue:
    """Everything registered, by name; first registration of a name wins."""

    generators: dict[str, Generator] = field(default_factory=dict)
    effects: dict[str, Effect] = field(default_factory=dict)
    recipes: dict[str, Recipe] = field(default_factory=dict)
    encoders: dict[str, Encoder] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # "<kind>:<name>" -> plugin


class PluginHost:
    """Loads plugins, calls their hooks one plugin at a time, and keeps the results."""

    def __init__(
        self,
        *,
        allow: Sequence[str] | None = None,
        load_entrypoints: bool = True,
        trace: bool = False,
    ) -> None:
        self.allow = None if allow is None else set(allow)
        self.load_entrypoints = load_entrypoints
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        if trace:
            self.pm.trace.root.setwriter(lambda text: log.debug(text.rstrip()))
            self.pm.enable_tracing()
        self.records: dict[str, PluginRecord] = {}
        self._extra: list[tuple[str, object]] = []
        self.catalogue = Catalogue()

    def add(self, plugin: object, name: str) -> None:
        """Register an in-process plugin (tests, embedding applications)."""
        self._extra.append((name, plugin))

    def load(self) -> Catalogue:
        """Discover, register and collect. Never raises for a plugin's fault."""
        self._register("museforge.core", _CoreEncoders(), source="core", version="")
        if self.load_entrypoints:
            for ep in self._entry_points():
                self._load_entry_point(ep)
        for name, plugin in self._extra:
            self._register(name, plugin, source="inline", version="")
        self._collect()
        return self.catalogue

    def _entry_points(self) -> Iterable[metadata.EntryPoint]:
        seen: set[str] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            if self.allow is not None and ep.name not in self.allow:
                log.info("plugin %s not in the allow-list; skipped", ep.name)
                continue
            yield ep

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        version = dist.version if dist is not None else ""
        source = f"entrypoint:{dist.name}" if dist is not None else "entrypoint"
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not take the server down
            self._fail(PluginRecord(ep.name, version, source), "import", exc)
            return
        self._register(ep.name, plugin, source=source, version=version)

    def _register(self, name: str, plugin: object, *, source: str, version: str) -> None:
        record = PluginRecord(name=name, version=version, source=source)
        if name in self.records:
            record.errors.append(f"a plugin named {name!r} is already registered")
            self.records[f"{name} (duplicate)"] = record
            return
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            self._fail(record, "register", exc)
            return
        record.hooks = sorted(
            impl.name for impl in self.pm.get_hookcallers(plugin) or [] if impl.name in HOOK_NAMES
        )
        self.records[name] = record

    def _fail(self, record: PluginRecord, stage: str, exc: BaseException) -> None:
        message = f"{stage} failed: {type(exc).__name__}: {exc}"
        record.errors.append(message)
        self.records[record.name] = record
        log.error("plugin %s: %s\n%s", record.name, message, traceback.format_exc())

    def _collect(self) -> None:
        kinds: dict[str, tuple[type, dict[str, Any], str]] = {
            "register_encoders": (Encoder, self.catalogue.encoders, "encoders"),
            "register_generators": (Generator, self.catalogue.generators, "generators"),
            "register_effects": (Effect, self.catalogue.effects, "effects"),
            "register_recipes": (Recipe, self.catalogue.recipes, "recipes"),
        }
        for hook_name, (expected, table, attr) in kinds.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                record = self.records[impl.plugin_name]
                before = list(getattr(record, attr))
                register = self._registrar(record, expected, table, attr)
                try:
                    impl.function(register=register)
                except Exception as exc:
                    # All or nothing: a hook that raised half-way leaves no half a plugin.
                    for name in getattr(record, attr)[len(before):]:
                        table.pop(name, None)
                        self.catalogue.owners.pop(f"{attr}:{name}", None)
                    setattr(record, attr, before)
                    self._fail(record, hook_name, exc)

    def _registrar(
        self, record: PluginRecord, expected: type, table: dict[str, Any], attr: str
    ) -> Callable[[Any], None]:
        def register(obj: Any) -> None:
            if not isinstance(obj, expected):
                raise TypeError(f"{attr[:-1]} must be a {expected.__name__}, got {type(obj)!r}")
            name: str = cast(Any, obj).name
            if name in table:
                owner = self.catalogue.owners[f"{attr}:{name}"]
                message = f"{attr[:-1]} {name!r} is already registered by plugin {owner!r}"
                record.errors.append(message)
                log.error("plugin %s: %s; ignored", record.name, message)
                return
            table[name] = obj
            self.catalogue.owners[f"{attr}:{name}"] = record.name
            getattr(record, attr).append(name)

        return register

    def failed(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.errors]

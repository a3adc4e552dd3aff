"""Plugin discovery and registration, with every failure isolated to its plugin.

Built-in plugins arrive through the same ``museforge`` entry points as a third
party's: nothing here knows their names.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import sys
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import pluggy

from . import hookspecs
from .codecs.encoders import BUILTIN_ENCODERS, Encoder
from .declarations import declaration_problem, format_problem
from .effect import Effect
from .generator import Generator
from .model_claims import model_clash, same_directory
from .recipe import Recipe

log = logging.getLogger("museforge.plugin_host")

ENTRY_POINT_GROUP = "museforge"
# An import slower than this is said (the port stays closed until every plugin is imported).
SLOW_IMPORT_SECONDS = 5.0
HOOK_NAMES = ("register_generators", "register_effects", "register_recipes", "register_encoders")
# hook -> (what its register accepts, the name of the PluginRecord list and Catalogue table)
KINDS: dict[str, tuple[type, str]] = {
    "register_encoders": (Encoder, "encoders"),
    "register_generators": (Generator, "generators"),
    "register_effects": (Effect, "effects"),
    "register_recipes": (Recipe, "recipes"),
}


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
    def register_encoders(self, register: hookspecs.RegisterEncoder) -> None:
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
    # "<kind>:<name>" -> the other plugins that registered that very object (IMAGE_ENCODERS)
    sharers: dict[str, list[str]] = field(default_factory=dict)

    def recipe_for(self, name: str, directory: Path) -> str:
        """The recipe that writes model ``name`` (``museforge export`` it), "" when none does."""
        for recipe in self.recipes.values():
            if recipe.name == name or same_directory(recipe.models_dir, directory):
                return recipe.name
        return ""


class _Registrar:
    """The ``register`` callback one plugin's hook receives; it remembers what it added."""

    def __init__(self, catalogue: Catalogue, record: PluginRecord, hook: str) -> None:
        self.catalogue = catalogue
        self.expected, self.attr = KINDS[hook]
        self.table: dict[str, Any] = getattr(catalogue, self.attr)
        self.owners = catalogue.owners
        self.sharers = catalogue.sharers
        self.record = record
        self.added: list[str] = []

    def __call__(self, obj: Any) -> None:
        if not isinstance(obj, self.expected):
            raise TypeError(f"{self.attr[:-1]} must be a {self.expected.__name__}, got {type(obj)!r}")
        name: str = cast(Any, obj).name
        if self.table.get(name) is obj:
            # The very same object again (the core's IMAGE_ENCODERS, by each plugin that writes
            # them): kept for this plugin too, should the first to register it fail.
            self.sharers.setdefault(f"{self.attr}:{name}", []).append(self.record.name)
            return
        if isinstance(obj, (Generator, Effect)):
            declaration_problem(obj)  # raises: the hook fails, and the plugin with it
        if name in self.table:
            owner = self.owners[f"{self.attr}:{name}"]
            by = "this plugin: register each name once" if owner == self.record.name else f"plugin {owner!r}"
            message = f"{self.attr[:-1]} {name!r} is already registered by {by}"
            self.record.errors.append(message)
            log.error("plugin %s: %s; ignored", self.record.name, message)
            return
        if isinstance(obj, (Generator, Effect)):
            tables = (("generator", self.catalogue.generators), ("effect", self.catalogue.effects))
            clash = model_clash(obj, self.attr[:-1], self.record.name, tables, self.owners)
            if clash:  # refused as a name clash is: this plugin fails, the first keeps its model
                self.record.errors.append(clash)
                log.error("plugin %s: %s", self.record.name, clash)
                return
        self.table[name] = obj
        self.owners[f"{self.attr}:{name}"] = self.record.name
        getattr(self.record, self.attr).append(name)
        self.added.append(name)

    def undo(self) -> None:
        """All or nothing: a hook that raised half-way leaves no half a plugin."""
        for name in self.added:
            self.table.pop(name, None)
            self.owners.pop(f"{self.attr}:{name}", None)
        kept = [name for name in getattr(self.record, self.attr) if name not in self.added]
        setattr(self.record, self.attr, kept)


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
        if trace:  # every hook call goes through pluggy's caller, so this sees them all
            self.pm.add_hookcall_monitoring(_trace_call, _trace_result)
        self.records: dict[str, PluginRecord] = {}
        self._extra: list[tuple[str, object]] = []
        self.catalogue = Catalogue()

    def add(self, plugin: object, name: str) -> None:
        """Register an in-process plugin (tests, embedding applications)."""
        self._extra.append((name, plugin))

    def load(self) -> Catalogue:
        """Discover, register and collect. Never raises for a plugin's fault (a KeyboardInterrupt
        is the operator's Ctrl-C, and goes through)."""
        # What plugins print while they load goes to stderr: stdout carries what a command
        # writes (`plugins --json`) and the banner scripts wait for.
        with contextlib.redirect_stdout(sys.stderr):
            self._register("museforge.core", _CoreEncoders(), source="core", version="")
            if self.load_entrypoints:
                for ep in self._entry_points():
                    self._load_entry_point(ep)
            for name, plugin in self._extra:
                self._register(name, plugin, source="inline", version="")
            self._collect()
        return self.catalogue

    def _entry_points(self) -> Iterable[metadata.EntryPoint]:
        seen: dict[str, str] = {}  # entry-point name -> the distribution that declared it first
        # museforge's own plugins first, then the rest by name: a name two plugins register stays
        # the built-in one's, whatever else is installed.
        def order(ep: metadata.EntryPoint) -> tuple[bool, str]:
            return _distribution(ep) != "museforge", ep.name

        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=order):
            if seen.get(ep.name) == _distribution(ep):  # the same distribution visible twice on sys.path
                continue
            seen.setdefault(ep.name, _distribution(ep))  # another one's: a clash, reported on loading
            if self.allow is not None and ep.name not in self.allow:
                log.info("plugin %s not in the allow-list; skipped", ep.name)
                continue
            yield ep
        unknown = sorted((self.allow or set()) - set(seen) - {name for name, _ in self._extra})
        if unknown:  # a misspelt name would otherwise serve nothing without a word
            near = {m for name in unknown for m in difflib.get_close_matches(name, seen, n=1)}
            hint = f"; did you mean {', '.join(map(repr, sorted(near)))}?" if near else ""
            log.warning("no installed plugin is called %s (installed: %s)%s", ", ".join(map(repr, unknown)),
                        ", ".join(sorted(seen)) or "none", hint)

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        version = dist.version if dist is not None else ""
        source = f"entrypoint:{dist.name}" if dist is not None else "entrypoint"
        if ep.name in self.records:  # another distribution's plugin of that name: not even imported
            self._clash(PluginRecord(ep.name, version, source))
            return
        log.debug("loading plugin %s", ep.name)
        started = time.monotonic()
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # a broken plugin (an argparse's exit too) must not take
            self._fail(PluginRecord(ep.name, version, source), "import", exc)  # the server down
            return
        finally:
            took = time.monotonic() - started
            if took > SLOW_IMPORT_SECONDS:  # else the port stays closed with the log naming another
                log.warning("plugin %s took %.1f s to import", ep.name, took)
        self._register(ep.name, plugin, source=source, version=version)

    def _register(self, name: str, plugin: object, *, source: str, version: str) -> None:
        record = PluginRecord(name=name, version=version, source=source)
        if name in self.records:
            self._clash(record)
            return
        try:
            self.pm.register(plugin, name=name)
        except (Exception, SystemExit) as exc:
            self._fail(record, "register", exc)
            return
        try:
            self.pm.check_pending()  # a hook implementation no hookspec declares: a misspelling
        except pluggy.PluginValidationError as exc:
            unknown = ", ".join(repr(hook) for hook in self._unknown_hooks(plugin)) or str(exc)
            self.pm.unregister(plugin)
            self._fail(record, "register", exc, f"unknown hook {unknown} in plugin {name!r}; "
                       f"the known hooks are {', '.join(sorted(HOOK_NAMES))}")
            return
        record.hooks = sorted(
            impl.name for impl in self.pm.get_hookcallers(plugin) or [] if impl.name in HOOK_NAMES
        )
        problem = _hook_problem(plugin, record.hooks)
        if problem:  # else it would be listed as ok while serving nothing of what it meant to
            self.pm.unregister(plugin)
            record.hooks = []
            record.errors.append(f"register failed: {problem}")
            self._keep(record)
            log.error("plugin %s: %s", name, record.errors[-1])
            return
        self.records[name] = record

    def _unknown_hooks(self, plugin: object) -> list[str]:
        """The plugin's hooks that match no hookspec (pluggy's optional hooks aside)."""
        return sorted(
            caller.name for caller in self.pm.get_hookcallers(plugin) or []
            if not caller.has_spec()
            and any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls())
        )

    def _fail(self, record: PluginRecord, stage: str, exc: BaseException, problem: str = "") -> None:
        message = f"{stage} failed: {problem or f'{type(exc).__name__}: {exc}'}"
        record.errors.append(message)
        self._keep(record)
        log.error("plugin %s: %s\n%s", record.name, message, traceback.format_exc())

    def _clash(self, record: PluginRecord) -> None:
        first = self.records[record.name]
        record.errors.append(f"a plugin named {record.name!r} is already registered ({first.source}); "
                             f"this one ({record.source}) is not loaded")
        self._keep(record)
        log.error("plugin %s: %s", record.name, record.errors[-1])

    def _keep(self, record: PluginRecord) -> None:
        """List ``record`` under its name, or beside the plugin that has that name, never in its
        place (a failed `museforge.core` entry point must not hide the core's own record)."""
        name, n = record.name, 1
        while self.records.get(record.name, record) is not record:
            record.name = f"{name} (duplicate{f' {n}' if n > 1 else ''})"
            n += 1
        self.records[record.name] = record

    def _collect(self) -> None:
        plugins = self.pm.get_plugins()
        for hook_name in KINDS:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                record = self.records[impl.plugin_name]
                register = _Registrar(self.catalogue, record, hook_name)
                # pluggy's caller for this one plugin: errors stay isolated, and tracing sees the call.
                caller = self.pm.subset_hook_caller(hook_name, [p for p in plugins if p is not impl.plugin])
                try:
                    returned = caller(register=register)
                    if returned:  # pluggy gives back what the hook returned: objects it never registered
                        raise TypeError(f"it returned {type(returned[0]).__name__}; a hook calls "
                                        "register(obj) once per object and returns nothing (what it returns "
                                        "is not registered)")
                except (Exception, SystemExit) as exc:
                    register.undo()
                    self._fail(record, hook_name, exc)
        while self._check_formats():  # a plugin dropped can take an encoder another one's formats need
            self._drop_failed()
        self._drop_failed()

    def _check_formats(self) -> bool:
        """Every output format a generator or effect declares must be an encoder of its kind: a
        format without one would be listed, then refused by every request that asks for it.
        True when a plugin newly failed (its registrations are to be dropped)."""
        catalogue = self.catalogue
        failed = False
        for attr in ("generators", "effects"):
            table: dict[str, Generator | Effect] = getattr(catalogue, attr)
            for name, item in table.items():
                wrong = [f for f in item.formats if f not in catalogue.encoders
                         or catalogue.encoders[f].modality != item.modality]
                record = self.records[catalogue.owners[f"{attr}:{name}"]]
                if wrong and not record.errors:
                    problem = format_problem(attr[:-1], name, item.modality, wrong, catalogue.encoders)
                    record.errors.append(problem)
                    log.error("plugin %s: %s", record.name, record.errors[-1])
                    failed = True
        return failed

    def _drop_failed(self) -> None:
        """A plugin that failed anywhere registers nothing: not the half that worked, whose
        names would then belong to a plugin that reports itself broken."""
        failed = {name for name, record in self.records.items() if record.errors}
        catalogue = self.catalogue
        for key, owner in list(catalogue.owners.items()):
            if owner not in failed:
                continue
            heirs = [p for p in catalogue.sharers.get(key, []) if p not in failed]
            attr, name = key.split(":", 1)
            if heirs:  # the same object, registered by a plugin that works
                catalogue.owners[key] = heirs[0]
                getattr(self.records[heirs[0]], attr).append(name)
            else:
                getattr(catalogue, attr).pop(name, None)
                del catalogue.owners[key]
        for name in failed:
            record = self.records[name]
            record.generators, record.effects, record.recipes, record.encoders = [], [], [], []

    def failed(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.errors]


def _hook_problem(plugin: object, hooks: Sequence[str]) -> str:
    """'' when ``plugin`` implements a hook and marks every hook-named function, else what to do."""
    unmarked = [name for name in HOOK_NAMES if name not in hooks and callable(getattr(plugin, name, None))]
    if unmarked:  # a forgotten decorator: pluggy passes the function over without a word
        return f"{', '.join(unmarked)} is not marked @museforge.hookimpl, so it would never be called"
    if not hooks:  # often an entry point naming a module other than the one with the hooks
        return (f"it implements none of the hooks ({', '.join(HOOK_NAMES)}): mark them @museforge.hookimpl, "
                "in the module its entry point names")
    return ""


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return (getattr(dist, "name", "") or "").lower().replace("_", "-")


def _plugin_names(impls: Sequence[pluggy.HookImpl]) -> str:
    return ", ".join(impl.plugin_name for impl in impls)


def _trace_call(hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
    log.info("plugin %s: calling %s(%s)", _plugin_names(impls), hook, ", ".join(kwargs))


def _trace_result(
    outcome: pluggy.Result[Any], hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
) -> None:
    register = kwargs.get("register")
    added = register.added if isinstance(register, _Registrar) else []
    if outcome.exception is not None:
        log.info("plugin %s: %s raised %s: %s (registered %s, undone)", _plugin_names(impls), hook,
                 type(outcome.exception).__name__, outcome.exception, added)
    else:  # a register_* hook returns nothing; anything it does return is shown, and ignored
        result = outcome.get_result()
        log.info("plugin %s: %s registered %s%s", _plugin_names(impls), hook, added,
                 f", returned {result!r} (ignored)" if result else "")

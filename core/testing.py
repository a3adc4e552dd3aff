"""Pytest fixtures for a plugin's tests: the real engine in-process, and a real served server.

In the plugin's ``tests/conftest.py``::

    import pytest

    pytest_plugins = ("museforge.testing",)

    @pytest.fixture
    def museforge_plugins() -> list[str]:
        return ["studio_stripes"]  # installed plugins, by entry-point name

Then a test takes ``museforge_engine`` (a started engine with only those plugins, beside
the core's own PNG encoder) or ``museforge_server`` (such an engine served by a real gRPC
server on 127.0.0.1, with a connected ``client``). ``museforge_plugins`` may also give
in-process plugin objects as ``(name, plugin)`` pairs, and ``museforge_settings`` server
settings by their ``museforge.toml`` names. A chosen plugin that does not load fails the
fixture with :class:`PluginLoadError` (its own error), rather than serving without it.
``make_engine`` (``strict=True`` for that check) and ``serve`` do the same for fixtures of
a wider scope. Nothing is mocked: this is the engine and the server start code that
``museforge serve`` runs.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from .client import Client
from .config import Settings
from .engine.catalogue import Engine
from .engine.errors import InvalidArgument, RequestError
from .engine.plugin_host import ENTRY_POINT_GROUP
from .server.app import start_server

__all__ = [
    "Client",
    "Engine",
    "InvalidArgument",
    "PluginChoice",
    "PluginLoadError",
    "RequestError",
    "Served",
    "make_engine",
    "museforge_engine",
    "museforge_plugins",
    "museforge_server",
    "museforge_settings",
    "serve",
]

PluginChoice = str | tuple[str, object]  # an installed plugin's entry-point name, or (name, plugin)
START_TIMEOUT = 120.0  # seconds for the server to load its plugins' models and bind
LOOPBACK = "127.0.0.1:0"  # a free port, never reachable from another machine


@dataclass
class Served:
    """A running server: its engine, its address, and a client connected to it."""

    engine: Engine
    address: str
    client: Client


class PluginLoadError(RuntimeError):
    """A chosen plugin did not load: ``problems`` maps its name to its error, as
    ``museforge plugins`` would list it (the server would have served on without it)."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        said = "; ".join(f"plugin {name!r} did not load: {error}" for name, error in self.problems.items())
        super().__init__(said)


class _CheckedEngine(Engine):
    """An engine whose start fails with :class:`PluginLoadError` when a chosen plugin did not load:
    a test would otherwise see only NOT_FOUND for its generators, the cause in captured logs."""

    def __init__(self, settings: Settings, chosen: Sequence[str]) -> None:
        super().__init__(settings)
        self.chosen = tuple(chosen)

    def start(self) -> Engine:
        if self.started:
            return self
        super().start()
        problems = _load_problems(self, self.chosen)
        if problems:
            self.close()
            raise PluginLoadError(problems)
        return self


def _load_problems(engine: Engine, names: Iterable[str]) -> dict[str, str]:
    """Why each of ``names`` did not load in the started ``engine`` (none: it loaded)."""
    records = engine.plugins()
    problems: dict[str, str] = {}
    for name in names:
        # A name another plugin already had is listed as "<name> (duplicate)".
        own = [r for r in records if r.name == name or r.name.startswith(f"{name} (duplicate")]
        errors = [r.error for r in own if r.errors]
        if errors:
            problems[name] = "; ".join(errors)
        elif not own:
            problems[name] = f"no installed plugin is called {name!r} (no {ENTRY_POINT_GROUP!r} entry point)"
    return problems


def make_engine(plugins: Iterable[PluginChoice] = (), *, strict: bool = False, **settings: Any) -> Engine:
    """An engine (not started) with exactly these plugins; other installed ones are ignored.

    ``settings`` are :class:`museforge.config.Settings` fields, e.g. ``trace_plugins=True``.
    With ``strict``, starting it (also through :func:`serve`) raises :class:`PluginLoadError`
    when one of ``plugins`` fails to load; without, it starts with the others, as a server does.
    """
    chosen = list(plugins)
    installed = [p for p in chosen if isinstance(p, str)]
    own = Settings.model_validate(
        {"address": LOOPBACK, **settings, "plugins": installed, "load_installed_plugins": bool(installed)}
    )
    names = [p if isinstance(p, str) else p[0] for p in chosen]
    # Its plugin host is built from the settings, as for `museforge serve`.
    engine = _CheckedEngine(own, names) if strict else Engine(own)
    for choice in chosen:
        if not isinstance(choice, str):
            name, plugin = choice
            engine.host.add(plugin, name)
    return engine


@contextmanager
def serve(engine: Engine) -> Iterator[Served]:
    """Serve ``engine`` on 127.0.0.1 (a free port) in a background thread; stops it on exit.

    The server starts the engine and closes it when it stops. Batch jobs keep their
    database in a temporary directory unless the engine's settings name one.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="museforge-test-server", daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="museforge-test-") as data:
            settings = engine.settings.model_copy(
                update={"address": LOOPBACK, "data_dir": engine.settings.data_dir or data}
            )
            started = asyncio.run_coroutine_threadsafe(start_server(settings, engine), loop)
            running = started.result(START_TIMEOUT)
            try:
                with Client(running.address, timeout=60) as client:
                    yield Served(engine, running.address, client)
            finally:
                asyncio.run_coroutine_threadsafe(running.stop(0.5), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


@pytest.fixture
def museforge_plugins() -> list[PluginChoice]:
    """The plugins the engine and server fixtures load: override it in your conftest.py."""
    return []


@pytest.fixture
def museforge_settings() -> dict[str, Any]:
    """Settings for the engine and server fixtures (``Settings`` field names): override to change."""
    return {}


@pytest.fixture
def museforge_engine(
    museforge_plugins: list[PluginChoice], museforge_settings: Mapping[str, Any]
) -> Iterator[Engine]:
    """A started in-process engine with the chosen plugins; closed after the test. A chosen
    plugin that did not load raises :class:`PluginLoadError`."""
    engine = make_engine(museforge_plugins, strict=True, **museforge_settings).start()
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def museforge_server(
    museforge_plugins: list[PluginChoice], museforge_settings: Mapping[str, Any]
) -> Iterator[Served]:
    """A real gRPC server on 127.0.0.1 serving the chosen plugins, with a connected client. A
    chosen plugin that did not load raises :class:`PluginLoadError`."""
    with serve(make_engine(museforge_plugins, strict=True, **museforge_settings)) as served:
        yield served

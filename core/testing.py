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
settings by their ``museforge.toml`` names. ``make_engine`` and ``serve`` do the same for
fixtures of a wider scope. Nothing is mocked: this is the engine and the server start code
that ``museforge serve`` runs.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from .client import Client
from .config import Settings
from .engine.catalogue import Engine
from .engine.errors import InvalidArgument, RequestError
from .server.app import start_server

__all__ = [
    "Client",
    "Engine",
    "InvalidArgument",
    "PluginChoice",
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


def make_engine(plugins: Iterable[PluginChoice] = (), **settings: Any) -> Engine:
    """An engine (not started) with exactly these plugins; other installed ones are ignored.

    ``settings`` are :class:`museforge.config.Settings` fields, e.g. ``trace_plugins=True``.
    """
    chosen = list(plugins)
    installed = [p for p in chosen if isinstance(p, str)]
    own = Settings.model_validate(
        {"address": LOOPBACK, **settings, "plugins": installed, "load_installed_plugins": bool(installed)}
    )
    engine = Engine(own)  # its plugin host is built from the settings, as for `museforge serve`
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
    """A started in-process engine with the chosen plugins; closed after the test."""
    engine = make_engine(museforge_plugins, **museforge_settings).start()
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def museforge_server(
    museforge_plugins: list[PluginChoice], museforge_settings: Mapping[str, Any]
) -> Iterator[Served]:
    """A real gRPC server on 127.0.0.1 serving the chosen plugins, with a connected client."""
    with serve(make_engine(museforge_plugins, **museforge_settings)) as served:
        yield served

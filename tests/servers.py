"""Real museforge servers for tests: in a thread, or as a `museforge serve` subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import grpc

from museforge.config import Settings
from museforge.engine.catalogue import Engine
from museforge.engine.plugin_host import PluginHost
from museforge.server.app import RunningServer, start_server

ROOT = Path(__file__).resolve().parent.parent


def code_of(call: object) -> grpc.StatusCode:
    """The status a call ends with (OK when it returns)."""
    try:
        call() if callable(call) else None
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


class ServerThread:
    """A real museforge gRPC server on an ephemeral loopback port, in a background thread."""

    def __init__(
        self, settings: Settings | None = None, engine: Engine | None = None, span_exporter: Any = None
    ) -> None:
        self.settings = settings or Settings(address="127.0.0.1:0")
        self.engine = engine
        self.span_exporter = span_exporter  # tracing on, into this exporter (see test_tracing)
        self.loop = asyncio.new_event_loop()
        self.running: RunningServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.running = self.loop.run_until_complete(
                start_server(self.settings, self.engine, span_exporter=self.span_exporter)
            )
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    @property
    def address(self) -> str:
        assert self.running is not None
        return self.running.address

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running is not None:
            future = asyncio.run_coroutine_threadsafe(self.running.stop(0.5), self.loop)
            future.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)


def inline_engine(*plugins: tuple[str, object], **settings: object) -> Engine:
    """An engine with only the given throwaway plugins (installed ones are ignored)."""
    host = PluginHost(load_entrypoints=False)
    for name, plugin in plugins:
        host.add(plugin, name)
    return Engine(Settings(address="127.0.0.1:0", **settings), host)


class ServeProcess:
    """``museforge serve`` in a subprocess, as from a shell; the port is read from its banner."""

    BANNER = re.compile(r"museforge serving on (\S+)")

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""
        self.output: list[str] = []

    def __enter__(self) -> ServeProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "museforge.cli", "serve", "--address", "127.0.0.1:0", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            match = self.BANNER.search(line)
            if match:
                self.address = match.group(1)
                break
        if not self.address:
            self.proc.wait(10)
            raise RuntimeError("server did not start:\n" + "".join(self.output))
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

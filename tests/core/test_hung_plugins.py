"""Plugins whose generators never look at cancellation: their runs outlive their calls, and the
rest of the server keeps its threads (refused calls name the plugin; health says it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import grpc
import numpy as np
import pytest

import museforge
from museforge.client import Client
from tests.core.test_limits_and_faults import NoParams, slow
from tests.servers import ServerThread, code_of, inline_engine

release = threading.Event()  # set at each test's end: the pytest process keeps no stuck threads


def deaf(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    release.wait(120)  # never looks at ctx: Python cannot stop this thread
    yield museforge.Media("image", np.zeros((4, 4), np.float32), 0)


class Deaf:
    """A plugin of several generators that ignore cancellation."""

    def __init__(self, prefix: str, generators: int) -> None:
        self.names = [f"{prefix}.g{i}" for i in range(generators)]

    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        for name in self.names:
            register(museforge.Generator(name, "image", NoParams, deaf, ("png",), timeout=0.3))


class Calm:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("calm.slow", "image", NoParams, slow, ("png",), timeout=10))


def code(client: Client, name: str) -> grpc.StatusCode:
    return code_of(partial(client.generate, name, {}))


def refusal(client: Client, name: str) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate(name, {})
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    return caught.value.details() or ""


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_plugin_of_many_deaf_generators_cannot_stop_the_others() -> None:
    release.clear()
    hung = Deaf("hung", 8)
    engine = inline_engine(("hung", hung), ("calm", Calm()), worker_threads=4)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        assert server.running is not None
        pool = server.running.pool
        try:
            # Two calls to each: before, each generator kept two runs, and sixteen took every thread.
            codes = [code(client, name) for name in hung.names for _ in range(2)]
            assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * 4 + [grpc.StatusCode.UNAVAILABLE] * 12
            assert pool.overdue_runs() == 4
            said = refusal(client, "hung.g7")  # never called itself: its plugin is at its limit
            assert "generator hung.g7: plugin hung has 4 runs still going" in said
            assert "2 of generator hung.g0, 2 of generator hung.g1" in said
            assert client.health("museforge.plugin/hung") == "NOT_SERVING"
            assert client.health("museforge.plugin/calm") == "SERVING"
            for _ in range(3):  # other plugins still run (before: "every worker thread stayed busy")
                assert len(client.generate("calm.slow", {}).artifacts) == 1
            assert client.health() == "SERVING"
        finally:
            release.set()
        wait_until(lambda: pool.overdue_runs() == 0)
        wait_until(lambda: client.health("museforge.plugin/hung") == "SERVING")
        assert len(client.generate("hung.g7", {}).artifacts) == 1
        wait_until(lambda: pool.executor.threads() <= pool.executor.base)  # the extra threads left


def test_past_twice_worker_threads_overdue_runs_their_plugins_are_refused_and_the_threads_replaced() -> None:
    release.clear()
    engine = inline_engine(*((f"deaf{i}", Deaf(f"deaf{i}", 2)) for i in range(4)), ("calm", Calm()),
                           worker_threads=2)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        assert server.running is not None
        pool = server.running.pool
        try:
            for name in ("deaf0.g0", "deaf0.g0", "deaf1.g0", "deaf1.g0"):
                assert code(client, name) == grpc.StatusCode.DEADLINE_EXCEEDED
            # Four runs past their calls on a server of two places: a plugin holding any is refused ...
            said = refusal(client, "deaf0.g1")
            assert "plugin deaf0 has 2 runs still going" in said and "the server has 4 such runs" in said
            # ... one holding none is not, and each of its runs takes a thread of its own.
            for name in ("deaf2.g0", "deaf3.g0"):
                assert code(client, name) == grpc.StatusCode.DEADLINE_EXCEEDED
            assert pool.overdue_runs() == 6  # more than the spare threads: before, nothing else ran
            for _ in range(3):
                assert len(client.generate("calm.slow", {}).artifacts) == 1
        finally:
            release.set()
        wait_until(lambda: pool.overdue_runs() == 0)
        assert len(client.generate("deaf0.g1", {}).artifacts) == 1


def test_past_four_times_worker_threads_overdue_runs_every_call_is_refused() -> None:
    release.clear()
    engine = inline_engine(*((f"deaf{i}", Deaf(f"deaf{i}", 1)) for i in range(4)), ("calm", Calm()),
                           worker_threads=1)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        assert server.running is not None
        try:
            for i in range(4):
                assert code(client, f"deaf{i}.g0") == grpc.StatusCode.DEADLINE_EXCEEDED
            said = refusal(client, "calm.slow")  # the bound of replaced threads: refused, not starved
            assert "the server has 4 runs still going" in said and "every generator and effect" in said
        finally:
            release.set()
        wait_until(lambda: server.running is not None and server.running.pool.overdue_runs() == 0)
        assert len(client.generate("calm.slow", {}).artifacts) == 1

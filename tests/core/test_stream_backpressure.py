"""A streamed call whose client stops reading: the run waits for it instead of making everything
into memory, is stopped at its time limit all the same, and gives its thread back."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from pydantic import BaseModel

import museforge
from museforge.client import Client
from tests.servers import ServerThread, inline_engine

made = {"count": 0}
stopped = threading.Event()


class NoParams(BaseModel):
    pass


def noise(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    made["count"] = 0
    try:
        for index in range(count):  # ~0.8 MB of PNG each: what a client that stops reading would pile up
            ctx.check_cancelled()
            pixels = np.random.default_rng(index).random((512, 512, 3), np.float32)
            yield museforge.Media("image", pixels, index)
            made["count"] += 1
    finally:
        stopped.set()


def quick(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    yield museforge.Media("image", np.zeros((4, 4), np.float32), 0)


class Plugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.noise", "image", NoParams, noise, ("png",), max_count=64))
        register(museforge.Generator("test.timed_noise", "image", NoParams, noise, ("png",), max_count=64,
                                     timeout=2.0))
        register(museforge.Generator("test.quick", "image", NoParams, quick, ("png",)))


def test_a_run_waits_for_a_client_that_stops_reading() -> None:
    engine = inline_engine(("noise", Plugin()))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=120) as client:
        stream = client.stream_generate("test.noise", {}, count=48)
        assert next(stream).WhichOneof("event") == "seed"
        time.sleep(3)  # the client reads nothing: before, all 48 (~38 MB) were made into memory
        assert made["count"] < 30, made["count"]
        artifacts = [e for e in stream if e.WhichOneof("event") == "artifact"]  # reading again, it ends
        assert [a.artifact.index for a in artifacts] == list(range(48))


@pytest.mark.parametrize(("generator", "idle", "said"), [
    ("test.timed_noise", 120.0, "read its results too slowly"),  # stopped at its 2 s limit
    ("test.noise", 1.0, "the client took nothing for 1 s"),  # its limit is 600 s: stopped when idle
])
def test_a_client_that_stops_reading_is_stopped_and_gives_the_thread_back(
        generator: str, idle: float, said: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from museforge.server import thread_bridge

    monkeypatch.setattr(thread_bridge, "READER_IDLE_SECONDS", idle)  # 120 s, or shortened for the test
    stopped.clear()
    engine = inline_engine(("noise", Plugin()), worker_threads=1)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=120) as client:
        stream = client.stream_generate(generator, {}, count=64)
        next(stream)
        assert stopped.wait(20)  # the run was stopped while the client read nothing
        assert made["count"] < 64
        # The one place is free again, though the stalled call is still open (before: held to its end).
        assert len(Client(server.address, timeout=10).generate("test.quick", {}).artifacts) == 1
        with pytest.raises(grpc.RpcError) as caught:
            for _ in stream:
                pass
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert said in (caught.value.details() or "")


def test_a_client_cancelling_a_stream_is_no_error_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    engine = inline_engine(("noise", Plugin()))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=120) as client, \
            caplog.at_level(logging.INFO):
        streams = [client.stream_generate("test.noise", {}, count=48, seed=seed) for seed in range(4)]
        for stream in streams:
            next(stream)  # then the client reads nothing and cancels: an ordinary end of a call
        time.sleep(1)
        for stream in streams:
            stream.close()
        time.sleep(1)
        assert len(client.generate("test.quick", {}).artifacts) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


def test_a_slow_reader_of_a_run_that_finished_in_time_gets_it_all() -> None:
    engine = inline_engine(("noise", Plugin()))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=120) as client:
        stream = client.stream_generate("test.timed_noise", {}, count=3)  # made at once; 2 s limit
        events = [next(stream)]
        for event in stream:
            events.append(event)
            time.sleep(1.5)  # reads on past the generator's limit: it finished long before
        assert sum(e.WhichOneof("event") == "artifact" for e in events) == 3

"""A call the client cancels stops its generator instead of finishing for nobody."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

import museforge
from museforge.client import Client
from tests.servers import ServerThread, inline_engine

produced: list[int] = []
finished = threading.Event()


class NoParams(BaseModel):
    pass


def slow(ctx: museforge.GenerationContext, params: NoParams, seed: int,
         count: int) -> Iterator[museforge.Media]:
    try:
        for i in range(count):
            ctx.check_cancelled()
            produced.append(i)
            yield museforge.Media("image", [[0.0]], i)
            time.sleep(0.05)
    finally:
        finished.set()


class Plugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.slow", "image", NoParams, slow, ("png",)))


def test_cancelled_stream_stops_the_generator() -> None:
    with ServerThread(engine=inline_engine(("slow", Plugin()))) as server, \
            Client(server.address) as client:
        stream = client.stub.StreamGenerate(client.request("test.slow", count=60))
        for event in stream:
            if event.WhichOneof("event") == "artifact":
                stream.cancel()
                break
        assert finished.wait(10), "generator never noticed the cancellation"
        assert len(produced) < 60
        # The server is fine afterwards.
        assert len(client.generate("test.slow", count=2).artifacts) == 2

"""A call the client cancels stops its generator instead of finishing for nobody."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import museforge
from museforge.client import Client
from museforge.plugins.image.digits import MODELS_DIR
from tests.models import served_version
from tests.processes import scrape
from tests.servers import ServeProcess, ServerThread, inline_engine

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


METRICS = re.compile(r"metrics on http://(\S+)/metrics")
DIGITS = 20_000  # image.digits' most at its native size: minutes of work if nothing stopped it
STREAM = 'museforge_requests_total{code="CANCELLED",method="StreamGenerate",service="museforge.v1.Museforge"}'
IN_FLIGHT = 'museforge_requests_in_flight{service="museforge.v1.Museforge"}'
COMPUTED = f'nv_inference_count{{model="image.digits",version="{served_version(MODELS_DIR).name}"}}'


def metrics_of(server: ServeProcess) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # printed just after the banner
        found = METRICS.search("".join(server.output))
        if found:
            return found.group(1)
        time.sleep(0.05)
    raise AssertionError("no metrics address in:\n" + "".join(server.output))


def settled(address: str, name: str, seconds: float = 1.0, limit: float = 120) -> float:
    """``name``'s value once it has not changed for ``seconds``."""
    deadline = time.monotonic() + limit
    last = scrape(address).get(name)
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = scrape(address).get(name)
        if now == last and now is not None:
            return now
        last = now
    raise AssertionError(f"{name} still changing after {limit:g} s")


@pytest.mark.slow  # starts a server process
def test_a_client_leaving_mid_stream_stops_the_call_in_a_served_process(tmp_path: Any) -> None:
    env = {"MUSEFORGE_DATA_DIR": str(tmp_path / "data"), "MUSEFORGE_PLUGINS": "image",
           "MUSEFORGE_MAX_COUNT": str(DIGITS)}
    with ServeProcess("--metrics-address", "127.0.0.1:0", env=env) as server, \
            Client(server.address, timeout=120) as client:
        address = metrics_of(server)
        stream = client.stub.StreamGenerate(client.request("image.digits", count=DIGITS))
        for event in stream:
            if event.WhichOneof("event") == "artifact":
                stream.cancel()
                break
        computed = settled(address, COMPUTED)
        metrics = scrape(address)
        assert metrics[STREAM] == 1 and metrics[IN_FLIGHT] == 0
        # The server stopped making digits for nobody: left running, the call would have
        # computed all of them before its count settled.
        assert 0 < computed < DIGITS / 10, computed
        assert len(client.generate("image.digits", count=2).artifacts) == 2  # and it still serves

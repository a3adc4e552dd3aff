"""An effect is held to max_output_bytes as a generator is: its media over all its inputs, counted as
they come, and its run stopped as soon as the count passes the limit, in ApplyEffect, StreamApplyEffect
and over HTTP alike. A run that never stops yielding, an effect's or a generator's, is stopped at
max_artifacts."""

from __future__ import annotations

import base64
import http.client
import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel

import museforge
from museforge.client import Client, field_violations
from museforge.config import Settings
from tests.servers import ServerThread, inline_engine

LIMIT = 1_000_000  # bytes: one 256 x 256 RGB float image (786,432) fits, two do not
ARTIFACTS = 50


class Enlarge(BaseModel):
    scale: int = 1


class NoParams(BaseModel):
    pass


made: list[str] = []  # what the runs yielded, in order
closed = threading.Event()  # set when a run was stopped (its iterator closed)


def enlarge(ctx: museforge.GenerationContext, params: Enlarge, inputs: Any, seed: int) -> Iterator[Any]:
    """Each input, enlarged by ``scale``: a studio's effect that trusts its parameter."""
    try:
        for index, picture in enumerate(inputs):
            made.append(f"enlarge {index}")
            side = (picture.height * params.scale, picture.width * params.scale, 3)
            yield museforge.Media("image", np.full(side, 0.5, np.float32), index)
    finally:
        closed.set()


def endless_effect(ctx: museforge.GenerationContext, params: NoParams, inputs: Any,
                   seed: int) -> Iterator[Any]:
    index = 0
    try:
        while True:
            made.append("effect")
            yield museforge.Media("image", np.zeros((1, 1), np.uint8), index)
            index += 1
    finally:
        closed.set()


def endless(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    index = 0
    while True:
        ctx.check_cancelled()
        made.append("generator")
        yield museforge.Media("image", np.zeros((1, 1), np.uint8), index)
        index += 1


class Studio:
    @museforge.hookimpl
    def register_effects(self, register: Callable[[Any], None]) -> None:
        register(museforge.Effect("test.enlarge", "image", Enlarge, enlarge, ("png",), max_inputs=4,
                                  timeout=20))
        register(museforge.Effect("test.endless", "image", NoParams, endless_effect, ("png",), timeout=20))

    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.endless_generator", "image", NoParams, endless, ("png",),
                                     timeout=20))


def png(side: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 60, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    engine = inline_engine(("studio", Studio()), max_output_bytes=LIMIT, max_artifacts=ARTIFACTS,
                           http_address="127.0.0.1:0")
    with ServerThread(engine.settings, engine) as running:
        yield running


@pytest.fixture()
def client(server: ServerThread) -> Iterator[Client]:
    made.clear()
    closed.clear()
    with Client(server.address, timeout=60) as connected:
        yield connected


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    [(field, why)] = field_violations(caught.value)
    assert field == "parameters", why
    return why


def test_an_effect_s_output_over_all_its_inputs_is_held_to_max_output_bytes(client: Client) -> None:
    two = [("a.png", png()), ("b.png", png())]
    assert len(client.apply_effect("test.enlarge", two, {"scale": 2}).artifacts) == 2  # 2 x 196,608 bytes
    made.clear()
    why = refused(lambda: client.apply_effect("test.enlarge", two, {"scale": 4}))
    assert "effect test.enlarge made 1,572,864 bytes of media" in why and "media 1" in why
    assert "1,000,000" in why and "max_output_bytes" in why
    # Stopped at the media that passed the limit: the third input is never enlarged.
    made.clear()
    refused(lambda: client.apply_effect("test.enlarge", [*two, ("c.png", png())], {"scale": 4}))
    assert made == ["enlarge 0", "enlarge 1"] and closed.is_set()


def test_a_streamed_effect_is_held_to_the_same_total(client: Client) -> None:
    # Counted over the request, not per message: a stream gets the answer a single reply gets.
    events: list[Any] = []
    two = [("a.png", png()), ("b.png", png())]

    def stream() -> None:
        events.extend(client.stream_apply_effect("test.enlarge", two, {"scale": 4}))

    why = refused(stream)
    assert "max_output_bytes" in why and made == ["enlarge 0", "enlarge 1"]
    assert [e.artifact.index for e in events if e.WhichOneof("event") == "artifact"] == [0]


def test_an_effect_past_the_limit_over_http_is_a_400_naming_parameters(server: ServerThread) -> None:
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    body = {"inputs": [{"name": "a.png", "data": base64.b64encode(png(300)).decode()}],
            "parameters": {"scale": 2}}  # one 600 x 600 RGB float image: 4,320,000 bytes
    try:
        connection.request("POST", "/v1/effects/test.enlarge:apply", body=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json"})
        reply = connection.getresponse()
        status, answer = reply.status, json.loads(reply.read())
    finally:
        connection.close()
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT", answer
    [violation] = [v for d in answer["error"]["details"] for v in d.get("fieldViolations", [])]
    assert violation["field"] == "parameters" and "max_output_bytes" in violation["description"]


@pytest.mark.parametrize("call", ["effect", "generator"])
def test_a_run_that_never_stops_yielding_is_stopped_at_max_artifacts(client: Client, call: str) -> None:
    if call == "effect":
        why = refused(lambda: client.apply_effect("test.endless", [("a.png", png(8))]))
        assert closed.is_set()
    else:
        why = refused(lambda: client.generate("test.endless_generator", {}))
    assert f"{call} test.endless" in why and f"more than the {ARTIFACTS} artifacts" in why
    assert "max_artifacts" in why
    assert made == [call] * (ARTIFACTS + 1)  # stopped at the one past the limit


def test_a_walk_longer_than_max_artifacts_is_refused_before_it_runs() -> None:
    settings = Settings(address="127.0.0.1:0", plugins=["image"], max_artifacts=100)
    with ServerThread(settings) as server, Client(server.address, timeout=120) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.generate("image.tiles", {"interpolate_to": 9, "frames": 60}, seed=1, count=2)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        [(field, why)] = field_violations(caught.value)
        assert field == "parameters.frames" and "120 artifacts" in why and "max_artifacts" in why
        walk = client.generate("image.tiles", {"interpolate_to": 9, "frames": 100}, seed=1)
        assert len(walk.artifacts) == 100


def effect_outputs(client: Client) -> list[bytes]:
    return [client.apply_effect(name, [("a.png", png(64))], params, seed=3).artifacts[0].data
            for name, params in (("effect.upscale", {"scale": 2}), ("effect.denoise", {}))]


def test_a_built_in_effect_is_held_to_max_output_bytes_and_unchanged_within_it() -> None:
    # 128 x 128 upscaled x2 is 786,432 bytes of float RGB; 64 x 64's results are 196,608 at most.
    limited = Settings(address="127.0.0.1:0", plugins=["effect"], max_output_bytes=200_000)
    with ServerThread(limited) as server, Client(server.address, timeout=120) as client:
        why = refused(lambda: client.apply_effect("effect.upscale", [("a.png", png(128))], {"scale": 2}))
        assert "effect effect.upscale made 786,432 bytes of media" in why and "200,000" in why
        within = effect_outputs(client)
    with ServerThread(Settings(address="127.0.0.1:0", plugins=["effect"])) as server, \
            Client(server.address, timeout=120) as client:
        assert effect_outputs(client) == within

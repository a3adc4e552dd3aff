"""Bad requests get a precise gRPC error naming the field, and the server keeps serving."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from pydantic import BaseModel, ValidationInfo, model_validator

import museforge
from museforge.client import Client, field_violations
from museforge.config import Settings
from museforge.engine.generator import LimitExceeded, OutputEstimate, request_count
from tests.servers import ServerThread, inline_engine


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def assert_still_serving(client: Client) -> None:
    assert len(client.generate("image.digits", {"digit": 0}, seed=1).artifacts) == 1


def test_unknown_generator_is_not_found(client: Client) -> None:
    error = rpc_error(lambda: client.generate("image.nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "image.digits" in str(error.details())
    assert_still_serving(client)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"digit": 10}, "parameters.digit"),
        ({"digit": -1}, "parameters.digit"),
        ({"digit": 2.5}, "parameters.digit"),
        ({"digit": "seven"}, "parameters.digit"),
        ({"digit": [1, 2]}, "parameters.digit"),
        ({"size": 10_000_000}, "parameters.size"),
        ({"colour": "red"}, "parameters.colour"),
    ],
)
def test_bad_parameters_are_invalid_argument_naming_the_field(
    client: Client, params: dict[str, Any], field: str
) -> None:
    error = rpc_error(lambda: client.generate("image.digits", params, seed=1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [f for f, _ in field_violations(error)]
    assert fields == [field], field_violations(error)
    # A client that reads only the status text (grpcurl, C++, C#) learns the field too.
    assert field in (error.details() or ""), error.details()
    assert_still_serving(client)


@pytest.mark.parametrize(("generator", "params", "said"), [
    ("image.digits", {"digit": [7]}, 'valid integer; digit takes a whole number from 0 to 9, or "random"'),
    ("image.digits", {"size": 1e20}, "far too large a number; size takes a whole number from 28 to 512"),
    ("music.melody", {"key": 5}, "key takes text (Tonic: one of C, C#, D"),
    ("music.melody", {"tempo": "fast"}, "tempo takes a whole number from 30 to 240"),
    ("music.melody", {"loop": "maybe"}, "loop takes true or false")])
def test_a_value_of_the_wrong_type_is_told_what_the_field_takes(client: Client, generator: str,
                                                                params: dict[str, Any], said: str) -> None:
    # pydantic names only the type it wanted ("Input should be a valid integer"): not 0-9 or "random".
    error = rpc_error(lambda: client.generate(generator, params, seed=1, fmt="mid" if "music" in generator
                                              else ""))
    [(field, problem)] = field_violations(error)
    assert field == f"parameters.{next(iter(params))}" and said in problem, problem


def test_several_bad_fields_are_all_reported(client: Client) -> None:
    error = rpc_error(lambda: client.generate("image.digits", {"digit": 99, "x": 1}, count=10**6,
                                              fmt="gif"))
    fields = {f for f, _ in field_violations(error)}
    assert fields == {"parameters.digit", "parameters.x", "count", "format"}
    assert "and 1 more)" in (error.details() or "")


def test_count_above_configured_maximum(client: Client) -> None:
    error = rpc_error(lambda: client.generate("image.digits", {}, count=65))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(error)
    assert field == "count" and "64" in description
    assert_still_serving(client)


def test_configured_max_count_is_honoured() -> None:
    with ServerThread(Settings(address="127.0.0.1:0", max_count=2)) as server, \
            Client(server.address) as client:
        assert len(client.generate("image.digits", {}, count=2).artifacts) == 2
        error = rpc_error(lambda: client.generate("image.digits", {}, count=3))
        assert field_violations(error)[0][0] == "count"


class Params(BaseModel):
    fail_at: int = -1


def flaky(ctx: museforge.GenerationContext, params: Params, seed: int,
          count: int) -> Iterator[museforge.Progress | museforge.Media]:
    for i in range(count):
        if i == params.fail_at:
            raise RuntimeError("plugin bug")
        yield museforge.Media("image", [[0.5]], i)


def bad_output(ctx: museforge.GenerationContext, params: Params, seed: int,
               count: int) -> Iterator[Any]:
    yield "not media"


class FlakyPlugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.flaky", "image", Params, flaky, ("png",)))
        register(museforge.Generator("test.malformed", "image", Params, bad_output, ("png",)))


def test_plugin_exception_is_internal_for_that_request_only() -> None:
    with ServerThread(engine=inline_engine(("flaky", FlakyPlugin()))) as server, \
            Client(server.address) as client:
        error = rpc_error(lambda: client.generate("test.flaky", {"fail_at": 1}, count=3))
        assert error.code() == grpc.StatusCode.INTERNAL
        assert "plugin bug" in str(error.details())
        stream = rpc_error(lambda: list(client.stream_generate("test.flaky", {"fail_at": 0})))
        assert stream.code() == grpc.StatusCode.INTERNAL
        malformed = rpc_error(lambda: client.generate("test.malformed", {}))
        assert malformed.code() == grpc.StatusCode.INTERNAL
        assert len(client.generate("test.flaky", {}, count=3).artifacts) == 3


class Sized(BaseModel):
    """Parameters of test.sized. At most 100 cells per request: side x side x count."""

    side: int = 4

    @model_validator(mode="after")
    def _bounded(self, info: ValidationInfo) -> Sized:
        cells = self.side**2 * request_count(info)
        if cells > 100:
            raise LimitExceeded(f"side x side x count = {cells} exceeds 100 (parameters.side, count)",
                                ("parameters.side", "count"))
        return self


def sized(ctx: museforge.GenerationContext, params: Sized, seed: int, count: int) -> Iterator[Any]:
    for i in range(count):
        yield museforge.Media("image", np.zeros((params.side, params.side), np.float32), i)


class SizedPlugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator(
            "test.sized", "image", Sized, sized, ("png",),
            # as if RGBA float32: 16 bytes a cell
            estimate=lambda p, count: OutputEstimate(p.side**2 * count * 16, ("parameters.side", "count"))))


@pytest.fixture(scope="module")
def sized_client() -> Iterator[Client]:
    engine = inline_engine(("sized", SizedPlugin()), max_output_bytes=1024, http_address="127.0.0.1:0")
    with ServerThread(engine.settings, engine) as server, Client(server.address) as client:
        yield client


def test_a_cross_field_bound_names_its_first_field_and_is_in_the_schema(sized_client: Client) -> None:
    assert len(sized_client.generate("test.sized", {"side": 3}, count=4).artifacts) == 4
    error = rpc_error(lambda: sized_client.generate("test.sized", {"side": 3}, count=12))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(error)
    assert field == "parameters.side" and "count" in description
    assert "At most 100 cells" in sized_client.schema("test.sized")["description"]
    # A count out of range is reported once, as the count's own problem.
    error = rpc_error(lambda: sized_client.generate("test.sized", {"side": 3}, count=1000))
    assert [f for f, _ in field_violations(error)] == ["count"]


def test_an_output_over_max_output_bytes_is_refused_before_it_runs(sized_client: Client) -> None:
    # 10 x 10 x 1 cells pass the model's bound; their 1,600 bytes pass no 1 KiB max_output_bytes.
    error = rpc_error(lambda: sized_client.generate("test.sized", {"side": 10}, count=1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(error)
    assert field == "parameters.side" and "max_output_bytes" in description and "count" in description


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return {"digit": value}


@pytest.mark.parametrize("depth", [31, 40])
def test_deep_parameters_over_http_are_400_not_500(depth: int) -> None:
    settings = Settings(address="127.0.0.1:0", plugins=["image"], http_address="127.0.0.1:0")
    with ServerThread(settings) as server:
        assert server.running is not None and server.running.gateway is not None
        body = json.dumps({"parameters": _nested(depth)}).encode()
        post = urllib.request.Request(f"http://{server.running.gateway.address}/v1/generators/image.digits:generate",
                                      body, {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=30)
        assert refused.value.code == 400
        assert json.loads(refused.value.read())["error"]["status"] == "INVALID_ARGUMENT"


def test_parameters_with_too_many_values_are_refused_naming_the_field(client: Client) -> None:
    error = rpc_error(lambda: client.generate("image.digits", {"digit": list(range(20_000))}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(error)
    assert field == "parameters.digit" and "10,000 values" in description
    assert_still_serving(client)

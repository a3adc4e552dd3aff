"""Bad requests get a precise gRPC error naming the field, and the server keeps serving."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from pydantic import BaseModel

import museforge
from museforge.client import Client
from museforge.errors import field_violations
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
    assert_still_serving(client)


def test_several_bad_fields_are_all_reported(client: Client) -> None:
    error = rpc_error(lambda: client.generate("image.digits", {"digit": 99, "x": 1}, count=10**6,
                                              fmt="gif"))
    fields = {f for f, _ in field_violations(error)}
    assert fields == {"parameters.digit", "parameters.x", "count", "format"}


def test_count_above_configured_maximum(client: Client) -> None:
    error = rpc_error(lambda: client.generate("image.digits", {}, count=65))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(error)
    assert field == "count" and "64" in description
    assert_still_serving(client)


def test_configured_max_count_is_honoured() -> None:
    from museforge.config import Settings

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

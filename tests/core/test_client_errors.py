"""The Python client raises a typed error per status code, and each still reads as a grpc.RpcError."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_status import rpc_status
from pydantic import BaseModel, Field

import museforge
from museforge.client import (
    Client,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    MuseforgeError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    field_violations,
    retry_after,
)
from museforge.client_errors import typed
from museforge.server.auth import KeyFile
from tests.servers import ServerThread, inline_engine


class Params(BaseModel):
    size: int = Field(1, ge=1, le=4)


def tiles(ctx: museforge.GenerationContext, params: Params, seed: int, count: int) -> Iterator[Any]:
    for index in range(count):
        yield museforge.Media("image", np.zeros((params.size, params.size), np.float32), index)


def slow(ctx: museforge.GenerationContext, params: Params, seed: int, count: int) -> Iterator[Any]:
    for _ in range(20):
        ctx.check_cancelled()
        time.sleep(0.05)
    yield museforge.Media("image", np.zeros((4, 4), np.float32), 0)


def raises(ctx: museforge.GenerationContext, params: Params, seed: int, count: int) -> Iterator[Any]:
    raise RuntimeError("the plugin's own bug")
    yield  # pragma: no cover


def raises_at_length(ctx: museforge.GenerationContext, params: Params, seed: int, count: int
                     ) -> Iterator[Any]:
    raise RuntimeError("a plugin that explains itself at length " + "and on " * 600)
    yield  # pragma: no cover


class Plugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        for name, fn in (("test.tiles", tiles), ("test.slow", slow), ("test.raises", raises),
                         ("test.raises_at_length", raises_at_length)):
            register(museforge.Generator(name, "image", Params, fn, ("png",)))


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    engine = inline_engine(("errors", Plugin()))
    with ServerThread(engine.settings, engine) as running:
        yield running


@pytest.fixture()
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.address, timeout=30) as c:
        yield c


def test_invalid_parameters_raise_invalid_argument_with_the_field(client: Client) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.generate("test.tiles", {"size": 9}, seed=1)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in error.violations] == ["parameters.size"]
    assert error.message == error.details() and "test.tiles" in error.message
    assert error.correlation_id is None and error.retry_after is None
    # what callers of the untyped error used keeps working on the typed one
    assert field_violations(error) == list(error.violations)
    status = rpc_status.from_call(error)
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "parameters.size" in str(error)
    assert isinstance(error, MuseforgeError) and isinstance(error, grpc.RpcError)  # caught either way


def test_an_unknown_generator_or_effect_raises_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as caught:
        client.generate("test.nowhere")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and "test.nowhere" in caught.value.details()
    with pytest.raises(NotFound):
        client.apply_effect("effect.nowhere", [b"not an image"])


def test_a_stream_raises_typed_errors_while_it_is_iterated(client: Client) -> None:
    stream = client.stream_generate("test.tiles", {"size": 0}, seed=1)
    with pytest.raises(InvalidArgument) as caught:
        list(stream)
    assert [field for field, _ in caught.value.violations] == ["parameters.size"]
    with pytest.raises(NotFound):
        next(iter(client.stream_apply_effect("effect.nowhere", [b"x"])))
    with pytest.raises(NotFound):
        list(client.watch_job("no-such-job"))
    with pytest.raises(NotFound):
        list(client.job_items("no-such-job"))


def test_a_server_side_failure_raises_internal_with_its_correlation_id(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="museforge.service"), pytest.raises(Internal) as caught:
        client.generate("test.raises", seed=1)
    error = caught.value
    assert error.correlation_id is not None and len(error.correlation_id) == 12
    assert f"(correlation id {error.correlation_id})" in error.details()
    assert any(error.correlation_id in record.getMessage() for record in caplog.records)


def test_a_long_failure_message_is_cut_before_its_correlation_id(client: Client) -> None:
    with pytest.raises(Internal) as caught:
        client.generate("test.raises_at_length", seed=1)
    error = caught.value
    assert error.correlation_id is not None
    assert (error.details() or "").endswith(f"(correlation id {error.correlation_id})")
    assert len((error.details() or "").encode()) <= 1024


def test_the_clients_own_timeout_raises_deadline_exceeded(server: ServerThread) -> None:
    with Client(server.address, timeout=0.2) as hasty, pytest.raises(DeadlineExceeded) as caught:
        hasty.generate("test.slow", seed=1)
    assert caught.value.correlation_id is None  # the client gave up: nothing in the server's log


def test_no_server_raises_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Client(f"127.0.0.1:{port}", timeout=10) as lonely, pytest.raises(Unavailable) as caught:
        lonely.generators()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_keys_raise_unauthenticated_and_permission_denied(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "api_keys.json")
    jobs_only = keys.create("jobs", ["jobs"])[0]
    engine = inline_engine(("errors", Plugin()), auth=True, api_keys_file=str(tmp_path / "api_keys.json"))
    with ServerThread(engine.settings, engine) as server:
        with Client(server.address, timeout=30) as anonymous, pytest.raises(Unauthenticated) as caught:
            anonymous.generators()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with Client(server.address, timeout=30, api_key=jobs_only) as client:
            with pytest.raises(PermissionDenied):
                client.generate("test.tiles", seed=1)
            with pytest.raises(PermissionDenied):
                list(client.stream_generate("test.tiles", seed=1))


def test_the_call_rate_per_key_raises_resource_exhausted_with_its_delay() -> None:
    engine = inline_engine(("errors", Plugin()), requests_per_second_per_key=5.0)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        refused: ResourceExhausted | None = None
        for _ in range(30):
            try:
                client.plugins()
            except ResourceExhausted as exc:
                refused = exc
                break
        assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.retry_after is not None and 0 < refused.retry_after <= 0.25
        assert retry_after(refused) == refused.retry_after


class _FailedCall(grpc.RpcError, grpc.Call):
    """A failed call with a status code no museforge server answers with."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DATA_LOSS

    def details(self) -> str:
        return "lost"

    def trailing_metadata(self) -> Any:
        return ()

    def initial_metadata(self) -> Any:
        return ()


def test_a_code_without_a_class_of_its_own_raises_the_base_error() -> None:
    error = typed(_FailedCall())
    assert isinstance(error, MuseforgeError) and type(error) is MuseforgeError
    assert error.code() == grpc.StatusCode.DATA_LOSS
    assert str(error) == "DATA_LOSS: lost" and error.violations == ()
    assert typed(error) is error  # an error typed once stays as it is

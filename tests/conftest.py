"""Shared fixtures: real gRPC servers on 127.0.0.1, real plugins, real shipped models."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from museforge.client import Client
from museforge.config import Settings
from tests.servers import ServerThread


@pytest.fixture(scope="session", autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Job databases of every server the tests start (threads and subprocesses) go to a temp dir."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def server() -> Iterator[ServerThread]:
    """The server as a user runs it: built-in plugins and the shipped models."""
    with ServerThread(Settings(address="127.0.0.1:0")) as running:
        yield running


@pytest.fixture()
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.address, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch

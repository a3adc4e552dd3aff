"""One `museforge serve` subprocess shared by the adversarial tests, so its counters are its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import ServeProcess


@pytest.fixture(scope="session")
def target() -> Iterator[ServeProcess]:
    """The server as a user runs it (built-in plugins, shipped models), in its own process."""
    with ServeProcess() as running:
        yield running


@pytest.fixture()
def pid(target: ServeProcess) -> int:
    assert target.proc is not None and target.proc.poll() is None, "the server died"
    return target.proc.pid

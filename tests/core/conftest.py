"""Fixtures of the job test modules: each defines its own ``root`` (input and output folders)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from museforge.client import Client
from tests.core.jobs_helpers import job_settings
from tests.servers import ServerThread


@pytest.fixture(scope="module")
def running(root: Path) -> Iterator[ServerThread]:
    """A server whose job roots are the module's ``root``."""
    with ServerThread(job_settings(root)) as server:
        yield server


@pytest.fixture(scope="module")
def guarded(root: Path, keys: tuple[Path, dict[str, str]]) -> Iterator[ServerThread]:
    """A job server with API keys on (the module's ``keys``: a keys file and each key by name)."""
    settings = job_settings(root, auth=True, api_keys_file=str(keys[0]), http_address="127.0.0.1:0")
    with ServerThread(settings) as server:
        yield server


@pytest.fixture()
def jobs(running: ServerThread) -> Iterator[Client]:
    with Client(running.address, timeout=60) as client:
        yield client

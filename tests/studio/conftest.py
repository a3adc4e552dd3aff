"""The server both browsers' studio tests use: every built-in plugin, API keys on, job roots with
frames in them. Module-scoped, so each browser's tests see only the jobs they submitted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from museforge.config import Settings
from museforge.server.auth import KeyFile
from tests.core.jobs_helpers import write_frames
from tests.servers import ServerThread


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("studio")
    write_frames(folder / "in", 1001, 1006)
    write_frames(folder / "in", 1, 40, size=(256, 192), pattern="long.{:04d}.png")
    (folder / "out").mkdir()
    return folder


@pytest.fixture(scope="module")
def served(root: Path) -> Iterator[tuple[str, str]]:
    path = root / "keys" / "api_keys.json"  # apart: jobs never write beside the keys file
    path.parent.mkdir()
    key, _ = KeyFile(path).create("artist", ["generate", "read", "jobs"])
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", auth=True, api_keys_file=str(path),
                        plugins=["image", "music", "effect", "mesh", "video"], data_dir=str(root / "data"),
                        job_input_roots=[str(root / "in")], job_output_roots=[str(root / "out")])
    with ServerThread(settings) as server:
        assert server.running is not None and server.running.gateway is not None
        yield f"http://{server.running.gateway.address}", key

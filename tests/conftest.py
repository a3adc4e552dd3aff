"""Shared fixtures: real gRPC servers on 127.0.0.1, real plugins, real shipped models."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from museforge.client import Client
from museforge.config import Settings
from tests import background_checks
from tests.servers import ServerThread


def pytest_collection_finish(session: pytest.Session) -> None:
    background_checks.start(session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    background_checks.stop()


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


# Test tiers. `python -m pytest -n 2` runs everything in two processes (`-n 0`: in this one);
# `-m "not slow"` is the inner loop. A test's tier follows from where it lives, so a new test
# file lands in the right one by its name:
#   quality: evaluates a shipped model on held-out data (files named *_quality.py);
#   train:   trains and exports through the [train] extra (quick exports, the scaffold);
#   slow:    every quality and train test, plus load, soak, crash, Ray, adversarial,
#            interop, bench and lint runs, which start processes or run for many seconds.
QUALITY_FILES = ("_quality.py",)
TRAIN_FILES = ("_quick.py", "test_recipes_quick.py", "test_digits_export.py", "test_plugin_scaffold.py")
SLOW_FILES = (
    "test_load.py", "test_jobs_ray.py", "test_jobs_crash.py", "test_shutdown.py", "test_lint.py",
    "test_buf.py", "test_fuzz.py", "test_third_party_plugin.py", "test_bench_smoke.py",
    "test_cli.py", "test_jobs_cli.py", "test_workers.py", "test_packaging.py",  # CLI processes, wheels
    "test_models_cli.py",  # CLI processes against a server
    "test_feedback_tuning.py",  # `museforge export --from-feedback` processes
    "test_video.py",  # `museforge apply` on videos, in processes and against a server
    "test_installs.py",  # fresh virtualenvs: lowest-direct, newest, beside tritonclient[grpc]
    "test_jobs_lease.py",  # two or three job servers on one database, a job each
    "test_installed_plugin_faults.py",  # serve and CLI processes over installed plugins
    "test_studio_browser.py", "test_studio_firefox.py",  # real browsers driving the studio page
    "test_cli_files.py",  # CLI processes writing files
    "test_client_timeouts.py", "test_effect_output_limits.py",  # waits on a locked store; endless plugins
    "test_melody_instruments.py",  # music requests against a server of their own
    "test_autocut.py", "test_shots_served.py", "test_jobs_video.py",  # video decoded and encoded
    "test_stream_backpressure.py", "test_hung_plugins.py",  # wait out readers and hung runs
    "test_job_retry.py",  # jobs cancelled mid-way and run again, on one and on two servers
    "test_video_terminated.py", "test_video_sync.py", "test_video_colour_tags.py",  # video in processes
    "test_melody_pickup.py",  # pieces over every style, loop and tempo, measured
    "test_feedback_export_options.py",  # `museforge export --from-feedback` processes
    "test_export_versions.py",  # `museforge export` processes over an installed recipe
    "test_cli_outputs.py", "test_serve_operations.py",  # CLI and serve processes
    "test_sketch_memory.py", "test_tiles_emphasis.py",  # derived model versions written and checked
    "test_security.py", "test_limits_and_faults.py",  # key CLI processes; servers driven to their limits
    "test_melody_service.py", "test_performer.py",  # music rendered in processes, against servers
)
SLOW_FOLDERS = ("adversarial", "interop", "bench")


def pytest_configure(config: pytest.Config) -> None:
    for marker, meaning in (
        ("slow", "starts processes or runs for many seconds; skip with -m 'not slow'"),
        ("quality", "evaluates a shipped model on held-out data"),
        ("train", "trains and exports a model (needs the [train] extra)"),
    ):
        config.addinivalue_line("markers", f"{marker}: {meaning}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path
        tiers = set()
        if path.name.endswith(QUALITY_FILES):
            tiers |= {"quality", "slow"}
        if path.name.endswith(TRAIN_FILES):
            tiers |= {"train", "slow"}
        if path.name in SLOW_FILES or any(part in SLOW_FOLDERS for part in path.parent.parts[-1:]):
            tiers.add("slow")
        for tier in sorted(tiers):
            item.add_marker(getattr(pytest.mark, tier))
    # Slow files first (each file's own order kept): with the suite in two processes, the long
    # ones start early and the short ones fill in around them, instead of one long file
    # finishing alone at the end.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

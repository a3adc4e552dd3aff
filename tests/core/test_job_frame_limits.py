"""Batch-job frames whose effect hangs: failed at their time limit, given up on when the effect
ignores cancellation, and never piling up threads (see museforge.jobs.chain.item_outcome)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import museforge
from museforge.client import Client
from tests.servers import ServerThread, inline_engine


class NoParams(BaseModel):
    pass


def stall(ctx: museforge.GenerationContext, params: NoParams, inputs: Any, seed: int) -> Iterator[Any]:
    while not ctx.cancelled:  # never finishes on its own
        time.sleep(0.01)
    yield from ()


class StallPlugin:
    @museforge.hookimpl
    def register_effects(self, register: Callable[[Any], None]) -> None:
        register(museforge.Effect("test.stall", "image", NoParams, stall, ("png",)))


def test_a_job_frame_that_hangs_fails_at_the_time_limit_and_the_job_goes_on(tmp_path: Any) -> None:
    from museforge.v1 import jobs_pb2
    from tests.core.jobs_helpers import write_frames

    write_frames(tmp_path / "in", 1, 2)
    engine = inline_engine(
        ("stall", StallPlugin()),
        generator_timeout_seconds=0.5,
        data_dir=str(tmp_path / "d"),
        job_input_roots=[str(tmp_path / "in")],
        job_output_roots=[str(tmp_path / "out")],
    )
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=60) as client:
        spec = jobs_pb2.JobSpec(output_pattern="o.####.png")
        spec.steps.add(effect="test.stall")
        spec.input.pattern, spec.input.first_frame, spec.input.last_frame = "sh010.####.png", 1, 2
        done = client.wait_job(client.submit_job(spec).name, 60)
        result = jobs_pb2.JobResult()
        done.response.Unpack(result)
        assert [i.state for i in result.items] == [jobs_pb2.ITEM_STATE_FAILED] * 2
        assert all("0.5 s time limit per frame" in i.error for i in result.items)


deaf_release = threading.Event()


def deaf_frame(ctx: museforge.GenerationContext, params: NoParams, inputs: Any, seed: int) -> Iterator[Any]:
    deaf_release.wait(60)  # never looks at ctx; the test lets it go at its end
    yield from ()


class DeafFramePlugin:
    @museforge.hookimpl
    def register_effects(self, register: Callable[[Any], None]) -> None:
        register(museforge.Effect("test.deaf", "image", NoParams, deaf_frame, ("png",)))


def job_items(client: Client, effect: str, last: int) -> list[Any]:
    from museforge.v1 import jobs_pb2

    spec = jobs_pb2.JobSpec(output_pattern=f"{effect}.####.png")
    spec.steps.add(effect=effect)
    spec.input.pattern, spec.input.first_frame, spec.input.last_frame = "sh010.####.png", 1, last
    name = client.submit_job(spec).name
    result = jobs_pb2.JobResult()
    client.wait_job(name, 60).response.Unpack(result)
    return list(result.items)


def deaf_frames_server(tmp_path: Any, frames: int) -> ServerThread:
    from tests.core.jobs_helpers import write_frames

    write_frames(tmp_path / "in", 1, frames)
    engine = inline_engine(
        ("deaf", DeafFramePlugin()), ("stall", StallPlugin()),
        generator_timeout_seconds=0.5, job_workers=1,
        data_dir=str(tmp_path / "d"),
        job_input_roots=[str(tmp_path / "in")],
        job_output_roots=[str(tmp_path / "out")],
    )
    return ServerThread(engine.settings, engine)


def test_a_job_frame_that_ignores_its_time_limit_fails_and_the_next_job_runs(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before, the frame's thread was waited for: the job, and every job queued after it, hung.
    from museforge.jobs import chain
    from museforge.v1 import jobs_pb2

    monkeypatch.setattr(chain, "ABANDON_SECONDS", 0.5)
    deaf_release.clear()
    try:
        with deaf_frames_server(tmp_path, 1) as server, Client(server.address, timeout=60) as client:
            [deaf] = job_items(client, "test.deaf", 1)
            [stalled] = job_items(client, "test.stall", 1)
    finally:
        deaf_release.set()
    assert deaf.state == jobs_pb2.ITEM_STATE_FAILED
    assert "its effect ignored the request to stop" in deaf.error
    assert stalled.state == jobs_pb2.ITEM_STATE_FAILED and "time limit" in stalled.error


def test_frames_left_running_are_bounded(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each frame given up on keeps a thread for good: past a bound, frames fail without starting.
    from museforge.jobs import chain
    from museforge.v1 import jobs_pb2

    monkeypatch.setattr(chain, "ABANDON_SECONDS", 0.2)
    waited = time.monotonic()
    while chain.LEFT_RUNNING.count and time.monotonic() - waited < 30:  # another test's, let go, ending
        time.sleep(0.05)
    monkeypatch.setattr(chain, "MAX_LEFT_RUNNING", 1)
    deaf_release.clear()
    try:
        with deaf_frames_server(tmp_path, 3) as server, Client(server.address, timeout=60) as client:
            items = job_items(client, "test.deaf", 3)
    finally:
        deaf_release.set()
    assert [i.state for i in items] == [jobs_pb2.ITEM_STATE_FAILED] * 3
    assert "ignored the request to stop" in items[0].error
    assert all(i.error.startswith("not started: ") for i in items[1:]), [i.error for i in items]
    waited = time.monotonic()
    while chain.LEFT_RUNNING.count and time.monotonic() - waited < 30:  # let go: they end
        time.sleep(0.05)
    assert chain.LEFT_RUNNING.count == 0

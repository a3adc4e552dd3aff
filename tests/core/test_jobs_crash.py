"""kill -9 in the middle of a job: the restarted server resumes it, nothing lost or done twice.

A real ``museforge serve`` subprocess, a real SIGKILL, the same data directory on
restart; the outputs must equal, byte for byte, those of an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from museforge.client import Client
from museforge.v1 import jobs_pb2
from tests.core.jobs_helpers import chain_spec, serve_jobs, write_frames
from tests.core.test_video import make_video, moving

FRAMES = (1, 30)
ENV = {"MUSEFORGE_PLUGINS": "effect,image", "MUSEFORGE_JOB_WORKERS": "2"}


def progress(client: Client, name: str) -> jobs_pb2.JobMetadata:
    meta = jobs_pb2.JobMetadata()
    client.get_job(name).metadata.Unpack(meta)
    return meta


def submit_and_kill(tmp_path: Path, spec: jobs_pb2.JobSpec, after: int) -> tuple[str, int]:
    """Submit ``spec`` to a served data directory and SIGKILL the server once ``after`` items are
    done; the job's name and the items done at the kill."""
    with serve_jobs(tmp_path, "data", **ENV) as server:
        assert server.proc is not None
        with Client(server.address, timeout=60) as client:
            name = client.submit_job(spec).name
            deadline = time.monotonic() + 120
            while progress(client, name).done < after and time.monotonic() < deadline:
                time.sleep(0.02)
            done_before = progress(client, name).done
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
    return name, done_before


def item_commits(tmp_path: Path, name: str) -> list[tuple[int, int]]:
    """(state, attempts) of every item of the job, as the store recorded them."""
    return (sqlite3.connect(tmp_path / "data" / "jobs.sqlite3")
            .execute("SELECT state, attempts FROM items WHERE job_id = ?", (name.split("/")[1],))
            .fetchall())


def test_a_killed_server_resumes_the_job_with_identical_outputs(tmp_path: Path) -> None:
    write_frames(tmp_path / "in", *FRAMES, size=(256, 192))
    spec = chain_spec(*FRAMES, output="crashed/sh010.####.png")

    name, done_before = submit_and_kill(tmp_path, spec, after=4)
    assert 4 <= done_before < FRAMES[1], "the job must be killed in the middle"

    with serve_jobs(tmp_path, "data", **ENV) as server, Client(server.address, timeout=60) as client:
        finished = client.wait_job(name, 300)
        meta = jobs_pb2.JobMetadata()
        finished.metadata.Unpack(meta)
        assert finished.done and meta.state == jobs_pb2.JOB_STATE_SUCCEEDED and meta.done == FRAMES[1]
        # An uninterrupted run of the same job (its own data directory) for reference.
    with (
        serve_jobs(tmp_path, "data-reference", **ENV) as server,
        Client(server.address, timeout=60) as client,
    ):
        reference = client.wait_job(
            client.submit_job(chain_spec(*FRAMES, output="clean/sh010.####.png")).name, 300
        )
        assert reference.done

    crashed = sorted((tmp_path / "out" / "crashed").iterdir())
    assert [p.name for p in crashed] == [f"sh010.{f:04d}.png" for f in range(FRAMES[0], FRAMES[1] + 1)]
    for path in crashed:  # no partial or temporary file is left, and every frame is identical
        assert path.read_bytes() == (tmp_path / "out" / "clean" / path.name).read_bytes(), path.name
    # Each item was committed exactly once: frames in flight at the kill were not counted.
    assert item_commits(tmp_path, name) == [(int(jobs_pb2.ITEM_STATE_DONE), 1)] * FRAMES[1]


def test_a_killed_server_resumes_a_video_job_and_joins_the_same_bytes(tmp_path: Path) -> None:
    """A job over a video file: ranges committed before the kill are kept, those in flight redone,
    and the joined video equals, byte for byte, that of an uninterrupted run."""
    (tmp_path / "in").mkdir()
    pictures = [np.repeat(np.repeat(moving(n), 3, axis=0), 3, axis=1) for n in range(60)]
    make_video(tmp_path / "in" / "take.mp4", frames=60, pictures=pictures)

    def spec(output: str) -> jobs_pb2.JobSpec:
        job = chain_spec(0, 0, output=output)
        job.input.ClearField("pattern")
        job.input.ClearField("first_frame")
        job.input.ClearField("last_frame")
        job.input.video, job.input.frames_per_item = "take.mp4", 6
        return job

    name, done_before = submit_and_kill(tmp_path, spec("crashed/take.mp4"), after=3)
    assert 3 <= done_before < 10, "the job must be killed in the middle"

    with serve_jobs(tmp_path, "data", **ENV) as server, Client(server.address, timeout=60) as client:
        meta = jobs_pb2.JobMetadata()
        client.wait_job(name, 300).metadata.Unpack(meta)
        assert meta.state == jobs_pb2.JOB_STATE_SUCCEEDED and meta.done == 11  # ten ranges, the join
    with (
        serve_jobs(tmp_path, "data-reference", **ENV) as server,
        Client(server.address, timeout=60) as client,
    ):
        assert client.wait_job(client.submit_job(spec("clean/take.mp4")).name, 300).done

    assert [p.name for p in (tmp_path / "out" / "crashed").iterdir()] == ["take.mp4"]
    assert (tmp_path / "out" / "crashed" / "take.mp4").read_bytes() == (
        tmp_path / "out" / "clean" / "take.mp4"
    ).read_bytes()
    assert item_commits(tmp_path, name) == [(int(jobs_pb2.ITEM_STATE_DONE), 1)] * 11


def test_a_drain_ends_open_watches_and_waits_saying_the_job_goes_on(tmp_path: Path) -> None:
    # An open WatchJob or WaitOperation held the drain for its whole grace, then ended as if the
    # connection had failed; it ends at once now, saying the job resumes with the server.
    import threading

    import grpc

    frames = (1, 120)  # far more than are made before the drain: the job is running when it comes
    write_frames(tmp_path / "in", *frames, size=(256, 192))
    ended: dict[str, object] = {}
    with serve_jobs(tmp_path, "data", **ENV) as server:
        assert server.proc is not None
        with Client(server.address, timeout=120) as client:
            name = client.submit_job(chain_spec(*frames, output="drained/sh010.####.png")).name
            deadline = time.monotonic() + 120
            while progress(client, name).done < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            watching = threading.Event()

            def watch() -> None:
                events = client.watch_job(name)
                next(events)  # the snapshot: the watch is open
                watching.set()
                list(events)

            def follow(kind: str, call: Callable[[], object]) -> None:
                try:
                    ended[kind] = call()  # an answer instead of an error fails the test below
                except grpc.RpcError as exc:
                    ended[kind] = exc

            followers = [threading.Thread(target=follow, args=("watch", watch)),
                         threading.Thread(target=follow, args=("wait", lambda: client.wait_job(name, 300)))]
            for follower in followers:
                follower.start()
            assert watching.wait(60)
            time.sleep(0.5)  # the wait has been sent by now too
            server.proc.send_signal(signal.SIGTERM)
            for follower in followers:
                follower.join(120)
            assert server.proc.wait(120) == 0
    for kind in ("watch", "wait"):
        error = ended.get(kind)
        assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAVAILABLE, (kind, error)
        said = error.details() or ""
        assert "shutting down" in said and "goes on when it starts again" in said, (kind, said)

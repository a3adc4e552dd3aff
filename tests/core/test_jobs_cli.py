"""``museforge job`` as a user runs it: real processes against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from museforge.client import Client
from museforge.engine.codecs.video import probe
from tests.core.jobs_helpers import chain_spec, job_settings, serve_jobs, write_frames
from tests.core.test_video import make_video
from tests.servers import ServerThread


def museforge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "museforge.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


def test_submit_watch_status_list_cancel_delete(tmp_path: Path) -> None:
    write_frames(tmp_path / "in", 1001, 1006)
    (tmp_path / "out").mkdir()
    with ServerThread(job_settings(tmp_path)) as server:
        target = ("--server", server.address)
        submitted = museforge(
            "job",
            "submit",
            "--step",
            "effect.denoise",
            "-p",
            "sigma=20",
            "--step",
            "effect.upscale",
            "-p",
            "scale=2",
            "--input",
            "sh010.####.png",
            "--frames",
            "1001-1006",
            "--output",
            "clean/sh010.####.exr",
            "--format",
            "exr",
            "--key",
            "sh010-cli",
            "--watch",
            *target,
        )
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.split()[0]
        assert "succeeded, 6/6 done" in submitted.stderr
        # Not a terminal (a farm's log): a line per tenth of the job instead of a bar.
        assert f"{job_id}: 3/6 items (50%)" in submitted.stderr
        assert f"{job_id}: 6/6 items (100%)" in submitted.stderr
        assert sorted(p.name for p in (tmp_path / "out" / "clean").iterdir()) == [
            f"sh010.{f}.exr" for f in range(1001, 1007)
        ]

        chain = ("--step", "effect.denoise", "-p", "sigma=20", "--step", "effect.upscale", "-p", "scale=2")
        again = museforge("job", "submit", *chain, "--input", "sh010.####.png", "--frames", "1001-1006",
                          "--output", "clean/sh010.####.exr", "--format", "exr", "--key", "sh010-cli",
                          *target)
        assert again.stdout.split()[0] == job_id  # the idempotency key
        other = museforge("job", "submit", "--step", "effect.denoise", "--input", "sh010.####.png",
                          "--frames", "1001-1001", "--output", "x.####.png", "--key", "sh010-cli", *target)
        assert other.returncode != 0 and "job.idempotency_key" in other.stderr and job_id in other.stderr

        status = museforge("job", "status", job_id, "--json", *target)
        record = json.loads(status.stdout)
        assert record["metadata"]["state"] == "JOB_STATE_SUCCEEDED" and len(record["result"]["items"]) == 6
        items = museforge("job", "status", job_id, "--items", *target)
        assert items.stdout.count("done") >= 6 and "clean/sh010.1006.exr" in items.stdout

        listing = museforge("job", "list", "--state", "succeeded", *target)
        assert job_id in listing.stdout and "effect.denoise -> effect.upscale" in listing.stdout
        watched = museforge("job", "watch", job_id, "--json", *target)
        assert watched.returncode == 0 and "succeeded" in watched.stderr

        cancelled = museforge("job", "cancel", job_id, *target)  # finished: nothing happens, and it says so
        assert cancelled.returncode == 0 and "has already ended: succeeded" in cancelled.stderr
        assert museforge("job", "delete", job_id, *target).returncode == 0
        gone = museforge("job", "status", job_id, *target)
        assert gone.returncode == 1 and "NOT_FOUND" in gone.stderr

        bad = museforge(
            "job",
            "submit",
            "--step",
            "effect.denoise",
            "-p",
            "sigma=900",
            "--input",
            "../sh010.####.png",
            "--frames",
            "1-2",
            "--output",
            "o.####.png",
            *target,
        )
        assert bad.returncode == 1 and "job.steps[0].parameters.sigma" in bad.stderr
        usage = museforge(
            "job",
            "submit",
            "-p",
            "sigma=1",
            "--step",
            "effect.denoise",
            "--input",
            "a.#.png",
            "--frames",
            "1-2",
            "--output",
            "b.#.png",
            *target,
        )
        assert usage.returncode == 2 and "give --step EFFECT before its parameters" in usage.stderr


def test_a_video_job_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    make_video(tmp_path / "in" / "take.mp4", frames=20)
    with ServerThread(job_settings(tmp_path)) as server:
        target = ("--server", server.address)
        submitted = museforge("job", "submit", "--step", "effect.denoise", "--video", "take.mp4",
                              "--frames", "2-17", "--frames-per-item", "6", "--output", "clean/take.mov",
                              "--watch", *target)
        assert submitted.returncode == 0, submitted.stderr
        assert "succeeded, 4/4 done" in submitted.stderr  # ranges 2-7, 8-13, 14-17, then the join
        status = museforge("job", "status", submitted.stdout.split()[0], "--items", *target)
        listed = [line.split()[:2] for line in status.stdout.splitlines()[1:]]
        expected = [["2-7", "done"], ["8-13", "done"], ["14-17", "done"], ["2-17", "done"]]
        assert listed == expected, status.stdout
        assert probe(tmp_path / "out" / "clean" / "take.mov").frames == 16
        refused = museforge("job", "submit", "--step", "effect.denoise", "--video", "take.mp4",
                            "--output", "clean/take.gif", *target)
        assert refused.returncode != 0 and "job.output_pattern" in refused.stderr
        # 0-0 is frame 0 to a reader, but the whole video to a job's spec: refused, not run whole.
        whole = museforge("job", "submit", "--step", "effect.denoise", "--video", "take.mp4",
                          "--frames", "0-0", "--output", "clean/zero.mov", *target)
        assert whole.returncode != 0 and "give 0- for frames 0 to the end" in whole.stderr
        tail = museforge("job", "submit", "--step", "effect.denoise", "--video", "take.mp4",
                         "--frames", "15-", "--output", "clean/tail.mov", "--watch", *target)
        assert tail.returncode == 0, tail.stderr
        assert probe(tmp_path / "out" / "clean" / "tail.mov").frames == 5  # frames 15 to 19


def test_a_watch_whose_server_dies_says_the_connection_was_lost_and_the_job_is_kept(tmp_path: Path) -> None:
    # Before, a server killed mid-watch read as a TLS mistake: "closed the connection at once".
    write_frames(tmp_path / "in", 1, 200, size=(128, 96))
    (tmp_path / "out").mkdir()
    with serve_jobs(tmp_path) as server:
        assert server.proc is not None
        with Client(server.address, timeout=60) as client:
            job = client.submit_job(chain_spec(1, 200)).name.removeprefix("jobs/")
        with subprocess.Popen([sys.executable, "-m", "museforge.cli", "job", "watch", job, "--json",
                               "--server", server.address],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as watching:
            assert watching.stdout is not None
            assert json.loads(watching.stdout.readline())["state"]  # an item: the watch is under way
            server.proc.kill()
            _, stderr = watching.communicate(timeout=120)
    assert watching.returncode == 3, stderr
    assert f"connection to the server was lost while watching job {job}" in stderr, stderr
    assert f"`museforge job status {job}`" in stderr and "tls" not in stderr.lower(), stderr
    with serve_jobs(tmp_path) as restarted:  # and it is there, as the message says
        status = museforge("job", "status", job, "--server", restarted.address)
        assert status.returncode == 0 and f"job {job}:" in status.stdout, status.stderr

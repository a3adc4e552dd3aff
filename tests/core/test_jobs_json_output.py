"""``museforge job submit --json`` keeps stdout to JSON (`> s.json` then parses); the human lines go
to stderr. With --watch, stdout is JSON Lines: the Operation, then a line per item."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.jobs_helpers import job_settings
from tests.core.test_jobs_cli import museforge
from tests.core.test_video import make_video
from tests.servers import ServerThread


def test_submit_json_writes_only_json_to_stdout(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    make_video(tmp_path / "in" / "take.mp4", frames=8, audio=False)
    with ServerThread(job_settings(tmp_path)) as server:
        common = ("job", "submit", "--step", "effect.denoise", "--video", "take.mp4",
                  "--frames-per-item", "4", "--json", "--server", server.address)
        alone = museforge(*common, "--output", "a.mp4")
        assert alone.returncode == 0, alone.stderr
        operation = json.loads(alone.stdout)
        job = operation["metadata"]["id"]
        # The status line goes to stderr, in whatever state the job already is (queued, or running
        # when the executor was quicker than the reply), and stdout holds the JSON alone.
        assert f"job {job}: " in alone.stderr and "job " not in alone.stdout.replace(job, "")
        watched = museforge(*common, "--output", "b.mp4", "--watch")
        assert watched.returncode == 0, watched.stderr
        lines = [json.loads(line) for line in watched.stdout.splitlines()]
        assert lines[0]["metadata"]["job"]["outputPattern"] == "b.mp4"
        assert [item["state"] for item in lines[1:]] == ["ITEM_STATE_DONE"] * 3
        assert "succeeded, 3/3 done" in watched.stderr
    assert (tmp_path / "out" / "b.mp4").is_file()

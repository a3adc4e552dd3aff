"""``museforge apply`` over a video ended by SIGTERM (``timeout``, a scheduler, ``kill``) leaves no hidden
partial file behind, as Ctrl-C does not; an empty input is called empty."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.test_video import make_video


def said_interrupted(process: subprocess.Popen[str], signum: int) -> None:
    """Signal a command still running; it must stop as Ctrl-C stops it (killed if it does not end)."""
    try:
        if process.poll() is None:
            process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130 and "interrupted" in stderr, (process.returncode, stderr)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_terminated_apply_leaves_no_partial_video(tmp_path: Path, signum: int) -> None:
    source = make_video(tmp_path / "clip.mp4", frames=2000, audio=False)
    output = tmp_path / "out" / "y.mp4"
    partial = output.with_name(".y.mp4.partial.mp4")
    process = subprocess.Popen(
        [sys.executable, "-m", "museforge.cli", "apply", "effect.denoise", str(source), "-o", str(output),
         "--local", "--plugins", "effect"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 240
        while not partial.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert partial.exists(), "the video was never being written"
    finally:
        said_interrupted(process, signum)
    assert not output.exists()
    assert not output.parent.exists()  # nor the folder made for it


def test_an_empty_file_is_called_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "museforge.cli", "apply", "effect.denoise", str(empty), "-o",
         str(tmp_path / "out.mp4"), "--local", "--plugins", "effect"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 1 and "empty.mp4: the file is empty (0 bytes)" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == [empty]


def test_any_command_ended_by_sigterm_says_so_as_ctrl_c_does(tmp_path: Path) -> None:
    """Every command but serve takes SIGTERM as Ctrl-C (its files are cleaned up, it says why it
    stopped, exit 130); before, only apply over a video did and the rest died where they stood."""
    process = subprocess.Popen(
        [sys.executable, "-m", "museforge.cli", "generate", "music.melody", "--local", "--plugins", "music",
         "-p", "bars=40", "-n", "4", "-f", "wav", "-o", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        time.sleep(3)  # started and busy: loading its models or composing
        assert process.poll() is None, process.communicate()
    finally:
        said_interrupted(process, signal.SIGTERM)

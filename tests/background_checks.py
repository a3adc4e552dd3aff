"""Slow whole-tree checks started when the session's tests are collected, collected by their tests.

mypy over the whole tree takes most of a minute of one core from a clean clone (no cache); the
rest of the suite spends much of its time waiting on servers and subprocesses, so running it
beside them saves that minute of wall-clock time. mypy checks in two worker processes (its
``--num-workers``, 2.1 on): from cold, 31 s instead of 52 here, and no more CPU in all. The
checks only start when their test was collected.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["core", "export", "plugins", "scripts", "tests", "bench"]
MYPY_TEST = "test_mypy_clean"
_running: dict[str, subprocess.Popen[str]] = {}


def present() -> list[str]:
    return [s for s in SOURCES if any((ROOT / s).rglob("*.py"))]


def _start_mypy() -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mypy", "--num-workers", "2", *present()], cwd=ROOT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def start(items: list[pytest.Item]) -> None:
    """Start mypy now if its test is among ``items`` and the session runs in one process.

    With ``-n N`` every worker collects every test but runs only some: its test runs mypy
    itself, in parallel with the other workers anyway.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if any(item.name == MYPY_TEST for item in items) and MYPY_TEST not in _running:
        _running[MYPY_TEST] = _start_mypy()


def mypy_result(timeout: float = 900) -> tuple[int, str]:
    """mypy's exit code and report: from the run started at collection, or a fresh one."""
    process = _running.pop(MYPY_TEST, None) or _start_mypy()
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, output


def stop() -> None:
    """Kill checks whose tests never ran (an interrupted or deselected session)."""
    for process in _running.values():
        process.kill()
        process.wait()
    _running.clear()

"""The code stays ruff- and mypy-clean (the project's configuration is in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["core", "export", "plugins", "scripts", "tests", "bench"]


def present() -> list[str]:
    return [s for s in SOURCES if any((ROOT / s).rglob("*.py"))]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is a [dev] dependency")
def test_ruff_clean() -> None:
    result = subprocess.run(["ruff", "check", *present()], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_mypy_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", *present()], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout

"""The code stays ruff- and mypy-clean (the project's configuration is in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.background_checks import ROOT, mypy_result, present


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is a [dev] dependency")
def test_ruff_clean() -> None:
    result = subprocess.run(["ruff", "check", *present()], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_mypy_clean() -> None:
    # Started beside the other tests when this one was collected (tests/background_checks.py).
    code, report = mypy_result()
    assert code == 0, report

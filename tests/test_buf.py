"""buf lint and the breaking-change check over protos/ (scripts/buf_check.py), and that both can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "buf_check.py"

pytestmark = pytest.mark.skipif(
    shutil.which("npm") is None and not (ROOT / "scripts/buf/node_modules/.bin/buf").exists(),
    reason="buf comes from the npm registry and npm is not installed",
)


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def workspace_with(tmp_path: Path, edit: tuple[str, str, str]) -> Path:
    """A copy of buf.yaml and protos/ with one text replacement in one proto file."""
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    relative, old, new = edit
    target = tmp_path / "protos" / relative
    text = target.read_text()
    assert old in text, f"{old!r} is not in {relative}: update this test"
    target.write_text(text.replace(old, new, 1))
    return tmp_path


def test_protos_pass_lint_and_match_the_last_release() -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "buf lint: clean" in result.stderr and "compatible" in result.stderr


def test_a_renumbered_field_is_a_breaking_change(tmp_path: Path) -> None:
    workspace = workspace_with(tmp_path, ("museforge/v1/jobs.proto", "uint64 seed = 7;", "uint64 seed = 70;"))
    result = check("breaking", "--workspace", str(workspace))
    assert result.returncode != 0
    assert "seed" in result.stdout and "BREAKING" in result.stderr


def test_a_badly_named_enum_value_fails_lint(tmp_path: Path) -> None:
    added = "  JOB_STATE_CANCELLED = 5;\n  STALLED = 99;"
    workspace = workspace_with(tmp_path, ("museforge/v1/jobs.proto", "  JOB_STATE_CANCELLED = 5;", added))
    result = check("lint", "--workspace", str(workspace))
    assert result.returncode != 0 and "STALLED" in result.stdout


def test_the_oip_proto_keeps_its_specified_names() -> None:
    # The exception is for the Open Inference Protocol only: its names come from its spec.
    config = (ROOT / "buf.yaml").read_text()
    assert "protos/museforge/inference" in config
    text = (ROOT / "protos/museforge/inference/grpc_service.proto").read_text()
    assert "package inference;" in text and "TYPE_FP32" in text

"""Lint protos/ with buf and check them for breaking changes against the last release.

    python scripts/buf_check.py              # lint, then breaking-change check
    python scripts/buf_check.py lint
    python scripts/buf_check.py breaking
    python scripts/buf_check.py snapshot     # at a release: record protos/ as the new baseline

buf comes from the npm registry, pinned in scripts/buf/package.json (installed with
``npm ci`` on first use). The googleapis protos museforge imports are copied into
.buf-deps/ from the googleapis-common-protos package instead of a registry, and the
baseline is a buf image (JSON) of the released protos, kept in protos/releases/, so the
check needs no network and no git history. Exit code: buf's (0 clean, non-zero with
the findings printed), 2 when buf cannot be installed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_protos import stage_googleapis

from museforge import __version__

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "scripts" / "buf"
BUF = TOOLS / "node_modules" / ".bin" / "buf"
DEPS = ".buf-deps"
GOOGLEAPIS = ("api", "rpc", "longrunning")
RELEASES = ROOT / "protos" / "releases"


def baseline() -> Path:
    """The newest recorded release image (versions compare numerically)."""
    images = sorted(RELEASES.glob("v*.json"),
                    key=lambda p: tuple(int(n) for n in p.stem[1:].split(".") if n.isdigit()))
    if not images:
        raise SystemExit(f"no release image in {RELEASES}: run `python {Path(__file__).name} snapshot`")
    return images[-1]


def ensure_buf() -> Path:
    if BUF.exists():
        return BUF
    npm = shutil.which("npm")
    if npm is None:
        print("buf_check: npm is needed to install buf (@bufbuild/buf)", file=sys.stderr)
        raise SystemExit(2)
    result = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=TOOLS,
                            capture_output=True, text=True)
    if result.returncode != 0 or not BUF.exists():
        print(f"buf_check: npm ci failed in {TOOLS}:\n{result.stderr}", file=sys.stderr)
        raise SystemExit(2)
    return BUF


def buf(workspace: Path, *args: str) -> int:
    """Run buf in ``workspace`` (a directory with buf.yaml and protos/), deps staged first."""
    stage_googleapis(workspace / DEPS, GOOGLEAPIS)
    return subprocess.run([str(ensure_buf()), *args], cwd=workspace).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=("all", "lint", "breaking", "snapshot"), default="all")
    parser.add_argument("--workspace", type=Path, default=ROOT,
                        help="directory holding buf.yaml and protos/ (default: this checkout)")
    parser.add_argument("--against", type=Path, help="release image to compare with (default: the newest)")
    args = parser.parse_args(argv)
    workspace = args.workspace.resolve()
    if args.command == "snapshot":
        RELEASES.mkdir(parents=True, exist_ok=True)
        image = RELEASES / f"v{__version__}.json"
        status = buf(workspace, "build", "protos", "--exclude-source-info", "-o", str(image))
        if status == 0:
            print(f"wrote {image.relative_to(ROOT)}")
        return status
    status = 0
    if args.command in ("all", "lint"):
        status = buf(workspace, "lint", "protos")
        print(f"buf lint: {'clean' if status == 0 else 'failed'}", file=sys.stderr)
    if args.command in ("all", "breaking") and status == 0:
        against = (args.against or baseline()).resolve()
        status = buf(workspace, "breaking", "protos", "--against", str(against))
        print(f"buf breaking against {against.name}: {'compatible' if status == 0 else 'BREAKING'}",
              file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

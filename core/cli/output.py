"""What every command prints and writes: exit codes, tables, the progress line, files, failures."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def fail(message: str, code: int = EXIT_FAILED, violations: Iterable[tuple[str, str]] = ()) -> int:
    """Say on stderr why a command failed, and which fields, the same for every command; its exit code."""
    print(f"museforge: {message}", file=sys.stderr)
    for field, description in violations:
        print(f"  {field}: {description}", file=sys.stderr)
    return code


def print_table(rows: Iterable[Sequence[str]], header: Sequence[str]) -> None:
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    for line in [list(header), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


class Bar:
    """A dependency-free progress line on stderr (only when stderr is a terminal)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def update(self, done: int, total: int, stage: str) -> None:
        if not self.enabled or total <= 0:
            return
        filled = int(30 * done / total)
        sys.stderr.write(f"\r{stage:<10} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def write_file(directory: Path, name: str, data: bytes) -> Path:
    path = directory / Path(name).name  # never let a name escape the output directory
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path

"""Where a job may read and write: frame patterns expanded inside configured roots (the sandbox).

A path in a job is relative to a root (the first one) or absolute inside one. It is
resolved with symlinks followed, then must still lie inside a root: ``..`` tricks,
absolute paths elsewhere and symlinks that point out are refused before anything runs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# The frame number's place: a run of '#' (its length the width), printf's %04d or %d as Nuke, ffmpeg
# and OIIO write it, or Houdini's $F4 / $F.
FRAME_RUN = re.compile(r"#+|%(?:0(\d+))?d|\$F(\d*)(?![A-Za-z_])")
FRAME_RUN_WORDS = "one run of '#' (or %04d) for the frame number"
# What file systems take (Linux's NAME_MAX and PATH_MAX less its NUL): past either, every call on
# the path fails with ENAMETOOLONG, so such a path is refused when the job is submitted.
NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 4095
# An output is written under a temporary name beside it, then renamed: ".<name>.<8 random>.part"
# (chain.write_atomic), the longest such (a video's ".<name>.partial.mp4" and ".<name>.parts" are less).
OUTPUT_NAME_MAX_BYTES = NAME_MAX_BYTES - len("..12345678.part")
log = logging.getLogger("museforge.jobs")


class PathRefused(ValueError):
    """A path outside the sandbox (PERMISSION_DENIED) or malformed (INVALID_ARGUMENT)."""

    def __init__(self, message: str, permission: bool) -> None:
        super().__init__(message)
        self.permission = permission


@dataclass(frozen=True)
class Sandbox:
    """Resolved input and output roots (absolute, symlinks followed)."""

    inputs: tuple[Path, ...]
    outputs: tuple[Path, ...]
    protected: tuple[Path, ...] = ()  # never written, even inside an output root (job store, keys)

    @classmethod
    def of(
        cls, inputs: Sequence[str | Path], outputs: Sequence[str | Path], protected: Sequence[str | Path] = ()
    ) -> Sandbox:
        def resolved(paths: Sequence[str | Path]) -> tuple[Path, ...]:
            return tuple(Path(p).expanduser().resolve() for p in paths)

        return cls(resolved(inputs), resolved(outputs), resolved(protected))

    def input_path(self, path: str) -> Path:
        return _inside(path, self.inputs, "input")

    def output_path(self, path: str) -> Path:
        target = _inside(path, self.outputs, "output")
        if byte_length(target.name) > OUTPUT_NAME_MAX_BYTES:
            raise PathRefused(f"output file name is {byte_length(target.name):,} bytes "
                              f"({target.name[:40]!r}…); an output's is at most {OUTPUT_NAME_MAX_BYTES} "
                              "(it is written under a temporary name 15 bytes longer, then renamed)",
                              permission=False)
        for guarded in self.protected:
            if target == guarded or guarded in target.parents:
                log.info("output path %r refused: inside %s", path, guarded)
                raise PathRefused(f"output path {path!r} is inside the server's own files (its data "
                                  "folder: job store, API keys), which jobs never write", permission=True)
        return target


def _inside(path: str, roots: tuple[Path, ...], kind: str) -> Path:
    if not roots:
        raise PathRefused(
            f"the server has no {kind} roots configured: set job_{kind}_roots (see docs/jobs.md)",
            permission=True,
        )
    if not path or "\0" in path:
        raise PathRefused(f"{kind} path is empty or holds a NUL byte", permission=False)
    given = Path(path)
    if ".." in given.parts:
        raise PathRefused(f"{kind} path {path!r} climbs with '..'", permission=True)
    long_name = next((part for part in given.parts if byte_length(part) > NAME_MAX_BYTES), None)
    if long_name is not None:
        raise PathRefused(f"{kind} path has a name of {byte_length(long_name):,} bytes "
                          f"({long_name[:40]!r}…); a file or folder name is at most {NAME_MAX_BYTES} bytes",
                          permission=False)
    unresolved = given if given.is_absolute() else roots[0] / given
    try:
        candidate = unresolved.resolve()  # follows symlinks
    except (RuntimeError, OSError) as exc:  # a loop of links (RuntimeError before Python 3.13)
        log.info("%s path %r refused: %s", kind, path, exc)  # the server's own path: its log only
        raise PathRefused(f"{kind} path {path!r} is a loop of symbolic links", permission=False) from None
    if byte_length(str(candidate)) > PATH_MAX_BYTES:  # the root counts: said without it
        raise PathRefused(f"{kind} path {path[:80]!r}… is {byte_length(str(candidate)):,} bytes long inside "
                          f"its root; a path is at most {PATH_MAX_BYTES:,}", permission=False)
    for root in roots:
        if candidate == root or root in candidate.parents:
            return candidate
    # Where a link points is not the caller's to learn: said in the server's log only.
    log.info("%s path %r refused: it resolves to %s", kind, path, candidate)
    through = any(unresolved.absolute() == r or r in unresolved.absolute().parents for r in roots)
    how = "leads through a link to a place outside" if through else "is outside"
    raise PathRefused(f"{kind} path {path!r} {how} the {kind} roots ({', '.join(str(r) for r in roots)})",
                      permission=True)


def byte_length(text: str) -> int:
    """How many bytes ``text`` takes as a file name (UTF-8, as the server's file system stores it)."""
    return len(text.encode("utf-8", "surrogatepass"))


def not_a_file(path: Path) -> str | None:
    """None when ``path`` is a file; else why not, in words for the caller (a folder it cannot
    look into is said as such, never raised: that is the server's setup, not the caller's)."""
    try:
        if path.is_file():
            return None
        return "is a directory, not a file" if path.is_dir() else "not found"
    except OSError as exc:
        log.info("%s cannot be looked at: %s", path, exc)
        return f"cannot be looked at ({exc.strerror})"


def frame_path(pattern: str, frame: int) -> str:
    """The pattern with its one frame number (see FRAME_RUN) zero-padded to the width it gives."""
    runs = list(FRAME_RUN.finditer(pattern))
    if len(runs) != 1:
        raise ValueError(f"pattern {pattern!r} needs exactly {FRAME_RUN_WORDS}")
    run = runs[0]
    if run.group(0).startswith("#"):
        sign = "-" if frame < 0 else ""
        number = f"{sign}{abs(frame):0{len(run.group(0))}d}"
    else:  # printf's width counts a minus sign, as the tools that write these names count it
        number = f"{frame:0{int(run.group(1) or run.group(2) or 1)}d}"
    return pattern[:run.start()] + number + pattern[run.end():]


def has_frame_run(pattern: str) -> bool:
    return len(FRAME_RUN.findall(pattern)) == 1

"""Which numbered versions of a model serve at once: Triton's version policy.

``latest`` (or ``latest:N``) serves the N highest versions, ``all`` every one, and
``specific:1,3`` exactly those. Requests that name no version, and every generator, use
the highest version serving.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..ascii_numbers import ascii_number

Kind = Literal["latest", "all", "specific"]
SYNTAX = '"latest", "latest:N", "all" or "specific:V1,V2,..."'
MAX_VERSION = 2**31 - 1


@dataclass(frozen=True)
class VersionPolicy:
    kind: Kind = "latest"
    count: int = 1  # for "latest"
    versions: tuple[int, ...] = ()  # for "specific", ascending

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """``text`` in the policy syntax; ValueError naming what is wrong."""
        kind, _, rest = text.strip().partition(":")
        kind, rest = kind.strip().lower(), rest.strip()
        if kind == "all" and not rest:
            return cls("all")
        if kind == "latest":
            count = _number(rest, "latest:N needs N") if rest else 1
            return cls("latest", count=count)
        if kind == "specific" and rest:
            versions = sorted({_number(v, "specific: versions") for v in rest.split(",")})
            return cls("specific", versions=tuple(versions))
        raise ValueError(f"version policy {text!r} is not one of {SYNTAX}")

    @classmethod
    def pinned(cls, version: int) -> VersionPolicy:
        return cls("specific", versions=(version,))

    def select(self, available: Iterable[int]) -> list[int]:
        """The versions to serve, ascending; ValueError when the policy names a missing one."""
        found = sorted(set(available))
        if not found:
            raise ValueError("no numbered version directory")
        if self.kind == "all":
            return found
        if self.kind == "latest":
            return found[-self.count:]
        missing = [v for v in self.versions if v not in found]
        if missing:
            raise ValueError(f"version policy {self} names version(s) {_listed(missing)}, "
                             f"which are not in the directory (it has {_listed(found)})")
        return list(self.versions)

    def __str__(self) -> str:
        if self.kind == "all":
            return "all"
        if self.kind == "latest":
            return "latest" if self.count == 1 else f"latest:{self.count}"
        return "specific:" + ",".join(map(str, self.versions))


def next_version(directory: Path) -> int:
    """The version after the newest in ``directory`` (1 when there is none)."""
    existing = available_versions(directory) if directory.is_dir() else []
    return max(existing) + 1 if existing else 1


def available_versions(directory: Path) -> list[int]:
    """The numbered version directories under a model's directory, ascending."""
    numbers = (ascii_number(p.name, 10) for p in directory.iterdir() if p.is_dir())
    return sorted(n for n in numbers if n is not None and 0 < n <= MAX_VERSION)


def _number(text: str, what: str) -> int:
    text = text.strip()
    number = ascii_number(text, 10)
    if number is None or not 0 < number <= MAX_VERSION:
        raise ValueError(f"{what}: {text!r} is not a whole number from 1 to {MAX_VERSION} "
                         f"(policies: {SYNTAX})")
    return number


def _listed(versions: Iterable[int]) -> str:
    return ", ".join(map(str, versions))

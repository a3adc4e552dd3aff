"""Which version folder an export may write: never another model's, never an existing one unasked.

Imports no torch, so ``museforge export`` says this before training, and ``run_recipe`` again
for companions (known only once the recipe has run) just before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

from museforge.runtime.manifest import MANIFEST_NAME
from museforge.runtime.versions import available_versions, next_version


class VersionTaken(FileExistsError):
    """The version folder exists and replacing it was not asked for, or it holds another model."""


def default_version(root: Path, rewrite_newest: bool) -> int:
    """The newest version under ``root`` when it is to be rewritten, else the next free one."""
    existing = available_versions(root) if root.is_dir() else []
    if rewrite_newest and existing:
        return existing[-1]
    return next_version(root)


def refusal(root: Path, name: str, version: int, replace: bool) -> str:
    """Why model ``name``'s version ``version`` may not be written under ``root`` ('' when it may).

    A folder holds one model's versions (the server serves every one under one name), so a
    folder whose manifests name another model is refused, ``replace`` or not."""
    existing = available_versions(root) if root.is_dir() else []
    others = {v: owner for v in existing if (owner := _named(root / str(v))) not in (None, name)}
    folder = root / str(version)
    if version in others:
        return (f"{folder} is version {version} of {others[version]} (its {MANIFEST_NAME} says so): an "
                f"export of {name} never writes over another model's version, --replace or not; "
                "give --output a folder of its own")
    if others:
        listed = ", ".join(f"{v} ({owner})" for v, owner in others.items())
        return (f"{root} holds another model's versions: {listed}; a folder holds one model's versions, "
                f"so give the export of {name} a folder of its own (--output)")
    if version in existing and not replace:
        return (f"{folder} exists: versions are never overwritten unless --replace is given; choose "
                f"another --version-number (the next free one is {existing[-1] + 1})")
    return ""


def _named(directory: Path) -> str | None:
    """The model name a version's manifest records; None when it cannot be read (a damaged version
    says nothing about whose it is)."""
    try:
        name = json.loads((directory / MANIFEST_NAME).read_text("utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None

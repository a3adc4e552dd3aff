"""One model name, one model: a declaration that would share a name another one serves differently
(another directory, another pinned version or thread count) is refused when its plugin registers,
since the runtime keeps one session set per name and would hand the later generator the first's."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..runtime.model_source import ModelSource
from .effect import Effect
from .generator import Generator

Declared = Generator | Effect


def same_directory(a: Path, b: Path) -> bool:
    """Two spellings of one folder (relative, through a link) are the same model's."""
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def _settings(source: ModelSource) -> str:
    version = f"version {source.version}" if source.version is not None else "its newest version"
    threads = (f"intra_op_threads={source.intra_op_threads}" if source.intra_op_threads is not None
               else "the server's thread count")
    return f"{version}, {threads}"


def model_clash(declared: Declared, kind: str, plugin: str,
                registered: Iterable[tuple[str, Mapping[str, Declared]]],
                owners: Mapping[str, str]) -> str:
    """Why ``declared`` (of ``plugin``) may not be registered beside the generators and effects
    already ``registered`` (each table by its kind, owners by "<kind>s:<name>"); "" when it may."""
    for other_kind, table in registered:
        for other in table.values():
            for theirs in other.models:
                for mine in declared.models:
                    if mine.name != theirs.name or other is declared:
                        continue
                    owner = owners.get(f"{other_kind}s:{other.name}", "?")
                    first = f"{other_kind} {other.name!r} of plugin {owner!r}"
                    second = f"{kind} {declared.name!r} of plugin {plugin!r}"
                    if not same_directory(mine.directory, theirs.directory):
                        return (f"model {mine.name!r} is already declared by {first} with directory "
                                f"{theirs.directory}; {second} declares it with directory "
                                f"{mine.directory}: one name serves one model, so give this one a "
                                "name of its own")
                    if (mine.version, mine.intra_op_threads) != (theirs.version, theirs.intra_op_threads):
                        return (f"model {mine.name!r} is already declared by {first} with "
                                f"{_settings(theirs)}; {second} asks for {_settings(mine)}: one name "
                                "serves one version with one setting, so declare it alike, or declare "
                                "the other version under a name of its own (same directory)")
    return ""

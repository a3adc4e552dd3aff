"""Where a declared model's versions are looked for, and what is said when they are not there."""

from __future__ import annotations

import os
from pathlib import Path

from .model_source import ModelSource
from .versions import VersionPolicy, available_versions


class ModelMissing(FileNotFoundError):
    """The model's directory lacks the version to serve (not exported yet, or a wrong path)."""


def chosen_versions(policy: VersionPolicy, directory: Path) -> list[int]:
    """The versions under ``directory`` that ``policy`` serves; ModelMissing saying the layout
    expected, or which version the policy names that is not there."""
    # Said apart from the path: a caller sees the directory's last name alone (without_server_paths).
    layout = "<version>/model.onnx and <version>/manifest.json (1/, 2/, ...)"
    try:
        found = available_versions(directory)
    except FileNotFoundError:
        raise ModelMissing(f"no directory {directory}; it is to hold {layout}") from None
    except OSError as exc:
        raise ModelMissing(f"{directory} cannot be read ({exc}); it is to hold {layout}") from None
    if not found:
        raise ModelMissing(f"{directory} holds no numbered version; it is to hold {layout}")
    try:
        return policy.select(found)
    except ValueError as exc:
        raise ModelMissing(f"{directory}: {exc}") from None


def declared_apart(directory: Path, settings: tuple[int | None, int | None], source: ModelSource) -> str:
    """How ``source`` differs from the declaration a model was loaded from (its ``directory``, its
    pinned version and thread count); "" when it does not."""
    if os.path.realpath(directory) != os.path.realpath(source.directory):
        return f"directory {directory}, then {source.directory}"
    if settings != (source.version, source.intra_op_threads):
        return (f"version {settings[0]}, intra_op_threads {settings[1]}, then version {source.version}, "
                f"intra_op_threads {source.intra_op_threads} (None: the default)")
    return ""

"""Where a model lives: the declaration a generator makes and the runtime loads from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSource:
    """An ONNX model a generator runs: ``directory`` holds numbered versions (Triton layout)."""

    name: str  # served name, e.g. "image.digits"
    directory: Path  # .../models/digits
    version: int | None = None  # None: the highest numbered version

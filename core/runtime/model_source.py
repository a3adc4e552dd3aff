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
    # ONNX Runtime threads for this model's runs (None: the server's setting). 1 suits a small model
    # run step by step (a sampler's GRU): its runs are too short to split, and a second thread only
    # takes CPU from the rest of the request.
    intra_op_threads: int | None = None

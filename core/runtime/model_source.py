"""Where a model lives: the declaration a generator makes and the runtime loads from."""

from __future__ import annotations

import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

# What the routes take (/v2/models/{name}/infer) and `models add` accepts: a '/' or a space in a
# declared name would serve a model no route reaches.
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class ModelSource:
    """An ONNX model a generator runs: ``directory`` holds numbered versions (Triton layout).

    A declaration that cannot serve fails its plugin at start (ValueError or TypeError naming the
    model and the field), not each request later: a plain string directory is taken as a path.
    """

    name: str  # served name, e.g. "image.digits"
    directory: Path  # .../models/digits
    version: int | None = None  # None: the highest numbered version
    # ONNX Runtime threads for this model's runs (None: the server's setting). 1 suits a small model
    # run step by step (a sampler's GRU): its runs are too short to split, and a second thread only
    # takes CPU from the rest of the request.
    intra_op_threads: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RULE.fullmatch(self.name) or ".." in self.name:
            raise ValueError(f"model name {self.name!r}: use letters, digits, '.', '_' and '-' (at most "
                             "128, starting with a letter or digit), e.g. 'studio.upscaler'")
        if isinstance(self.directory, str):
            object.__setattr__(self, "directory", Path(self.directory))
        elif not isinstance(self.directory, os.PathLike):
            raise TypeError(f"model {self.name}: directory must be a path (pathlib.Path or str), got "
                            f"{type(self.directory).__name__} {self.directory!r}")
        unset = {"version": "the newest version", "intra_op_threads": "the server's setting"}
        for field, value in (("version", self.version), ("intra_op_threads", self.intra_op_threads)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                                      or value < 1):
                raise ValueError(f"model {self.name}: {field} must be a whole number from 1, or None "
                                 f"({unset[field]}), got {value!r}")

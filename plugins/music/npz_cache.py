"""Parsed corpora cached as one compressed .npz: arrays plus a JSON ``info`` record (numpy only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def write_cache(path: Path, info: dict[str, Any], **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**arrays, "info": np.frombuffer(json.dumps(info).encode(), np.uint8)}
    np.savez_compressed(path, **record)  # type: ignore[arg-type]  # numpy's stub reads **kwds as allow_pickle


def read_cache(path: Path, rebuild: str, *names: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The named arrays and the info record; a missing file says which module rebuilds it."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: build it with `python -m {rebuild}`")
    with np.load(path) as data:
        arrays = [data[name] for name in names]
        info = json.loads(data["info"].tobytes().decode())
    return arrays, info

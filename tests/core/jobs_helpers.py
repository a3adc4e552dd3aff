"""Frames on disk and job specs for the batch-job tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from museforge.config import Settings
from museforge.v1 import jobs_pb2
from tests.servers import ServeProcess


def write_frames(
    directory: Path,
    first: int,
    last: int,
    size: tuple[int, int] = (64, 48),
    pattern: str = "sh010.{:04d}.png",
) -> list[Path]:
    """Textured RGB frames (a moving gradient plus seeded noise), one PNG per frame number."""
    directory.mkdir(parents=True, exist_ok=True)
    width, height = size
    paths = []
    for frame in range(first, last + 1):
        rng = np.random.default_rng(frame)
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        base = 0.5 + 0.4 * np.sin((x + 3 * frame) / 9.0)[..., None] * np.array([1.0, 0.7, 0.4])
        pixels = np.clip(
            base * (0.8 + 0.2 * np.cos(y / 7.0))[..., None] + rng.normal(0, 0.05, (height, width, 3)), 0, 1
        )
        path = directory / pattern.format(frame)
        Image.fromarray((pixels * 255 + 0.5).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def job_settings(root: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "address": "127.0.0.1:0",
        "data_dir": str(root / "data"),
        "job_input_roots": [str(root / "in")],
        "job_output_roots": [str(root / "out")],
        "plugins": ["effect", "image", "video"],
    }
    return Settings(**{**values, **extra})


def chain_spec(
    first: int, last: int, output: str = "clean/sh010.####.png", seed: int | None = 7, **fields: Any
) -> jobs_pb2.JobSpec:
    """denoise (sigma 25) then upscale x2 over sh010.####.png."""
    spec = jobs_pb2.JobSpec(output_pattern=output, **fields)
    spec.steps.add(effect="effect.denoise").parameters.update({"sigma": 25})
    spec.steps.add(effect="effect.upscale").parameters.update({"scale": 2})
    spec.input.pattern = "sh010.####.png"
    spec.input.first_frame, spec.input.last_frame = first, last
    if seed is not None:
        spec.seed = seed
    return spec


def serve_jobs(root: Path, data: str = "data", **env: str) -> ServeProcess:
    """`museforge serve` in a subprocess with its job store in ``root/data`` and roots in/ and out/."""
    return ServeProcess(
        env={
            "MUSEFORGE_DATA_DIR": str(root / data),
            "MUSEFORGE_JOB_INPUT_ROOTS": str(root / "in"),
            "MUSEFORGE_JOB_OUTPUT_ROOTS": str(root / "out"),
            **env,
        }
    )


def key_file(root: Path, scopes: dict[str, list[str]]) -> tuple[Path, dict[str, str]]:
    """A keys file under ``root/keys`` with a key per name and its scopes; each key by its name."""
    from museforge.server.auth import KeyFile

    path = root / "keys" / "api_keys.json"
    path.parent.mkdir()
    store = KeyFile(path)
    return path, {name: store.create(name, wanted)[0] for name, wanted in scopes.items()}

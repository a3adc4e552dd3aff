"""Execution-provider selection: CUDA when it can really run, else CPU, with one warning."""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Sequence

import onnxruntime as ort

log = logging.getLogger("museforge.runtime")

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
CPU = "CPUExecutionProvider"
_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


@functools.cache
def cuda_driver_present() -> bool:
    """True when the CUDA driver library loads.

    Without it the GPU package can still list CUDAExecutionProvider, and asking
    for it prints a screen of native errors; checking the driver first avoids that.
    """
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def resolve(preferred: Sequence[str]) -> list[str]:
    """The providers to ask a session for, in preference order, always ending with CPU."""
    available = set(ort.get_available_providers())
    chosen: list[str] = []
    for name in preferred:
        if name == CPU:
            continue
        if name not in available:
            warn_once(name, f"{name} is not in this onnxruntime build; running without it")
            continue
        if name in GPU_PROVIDERS and not cuda_driver_present():
            warn_once("no-cuda", f"{name} requested but no CUDA driver was found; running on CPU")
            continue
        chosen.append(name)
    chosen.append(CPU)
    return chosen


def note_fallback(requested: Sequence[str], actual: Sequence[str]) -> None:
    """Warn (once per provider) when a session dropped a provider it was asked for."""
    for name in requested:
        if name != CPU and name not in actual:
            warn_once(
                f"dropped:{name}",
                f"{name} could not start (CUDA/cuDNN libraries missing?); running on {actual[0]}",
            )

"""The H.264 encoder's settings: the same frames give the same bytes on every run.

A batch job encodes each range of frames to its own part and promises that a part made
again (after a crash, or the same job run twice) is the same file. x264 keeps that promise
on its SSE and AVX2 kernels, but not on its AVX-512 ones: on an AVX-512 machine (AMD Zen 4)
the same job run twice wrote other bytes about one time in three (the same 7 frames, checked
byte for byte, made a key frame of 920 bytes instead of 934), and never in 50 runs once
AVX-512 was left out; it encoded no slower without it there. So where the processor has
AVX-512, x264 is told to stop at AVX2, which every AVX-512 processor also has.
"""

from __future__ import annotations

import functools
from pathlib import Path

CPU_INFO = Path("/proc/cpuinfo")
QUALITY = {"crf": "18", "preset": "medium"}  # visually lossless for effects' output, at a usual speed
WITHOUT_AVX512 = "asm=AVX2"  # x264's name for AVX2 and all below it (SSE to BMI2, FMA3)


def x264_options(flags: frozenset[str] | None = None) -> dict[str, str]:
    """libx264's options through FFmpeg for ``flags`` (the processor's, as Linux names them;
    read from the running one when None)."""
    flags = cpu_flags() if flags is None else flags
    if any(flag.startswith("avx512") for flag in flags):
        return {**QUALITY, "x264-params": WITHOUT_AVX512}
    return dict(QUALITY)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags as the kernel lists them (``flags`` on x86, ``Features`` on
    ARM); none where it does not (then x264 chooses its kernels itself)."""
    try:
        text = CPU_INFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()

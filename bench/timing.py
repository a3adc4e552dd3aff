"""Shared measurement records and helpers (picklable: they cross process boundaries)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measurement:
    """One measured configuration: throughput in items/s and per-call latency."""

    items_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    calls: int = 0
    errors: int = 0
    wall_s: float = 0.0
    client_cpu: float | None = None  # load generator CPU seconds / wall seconds (1.0 = a core)
    server_cpu: float | None = None  # server (or in-process worker) CPU seconds / wall seconds
    first_error: str = ""


def summarise(latencies_ns: list[int], items_per_call: int, wall_s: float) -> Measurement:
    """Throughput and p50/p99 from the latencies of the calls completed in ``wall_s``."""
    if not latencies_ns or wall_s <= 0:
        return Measurement(wall_s=wall_s)
    ms = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    return Measurement(
        items_per_s=len(latencies_ns) * items_per_call / wall_s,
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        calls=len(latencies_ns),
        wall_s=wall_s,
    )


def own_cpu_s() -> float:
    """CPU seconds (user + system) of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds of another process from /proc/<pid>/stat (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return None
    # Fields after the ")" closing the command name: utime and stime are the 12th and 13th.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MiB, from /proc/<pid>/status VmRSS."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def timed_loop(
    call: Callable[[], object], items_per_call: int, warmup_s: float, duration_s: float
) -> Measurement:
    """Call ``call()`` back to back: ``warmup_s`` unrecorded, then ``duration_s`` recorded."""
    clock = time.perf_counter_ns
    end = clock() + int(warmup_s * 1e9)
    call()  # at least once: the first call allocates and plans
    while clock() < end:
        call()
    latencies: list[int] = []
    cpu0 = own_cpu_s()  # includes the library's own threads (ORT / torch pools)
    start = clock()
    end = start + int(duration_s * 1e9)
    while True:
        t0 = clock()
        if t0 >= end and latencies:
            break
        call()
        latencies.append(clock() - t0)
    wall = (clock() - start) / 1e9
    result = summarise(latencies, items_per_call, wall)
    result.server_cpu = (own_cpu_s() - cpu0) / wall
    return result

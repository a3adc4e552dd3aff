"""A server process's own counters: CPU seconds and resident memory, read from /proc.

Adversarial tests measure what a probe cost the server by these counters, never by the
wall clock: CPU seconds and peak RSS are what an attacker takes from other callers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def rss_bytes(pid: int) -> int:
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    return _status_kib(pid, "VmHWM") * 1024


def reset_peak_rss(pid: int) -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM to VmRSS)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Cost:
    """What the server spent between ``start`` and ``stop``."""

    cpu_seconds: float = 0.0
    peak_rss_growth: int = 0  # bytes above the RSS at the start
    rss_after: int = 0


class Meter:
    """``with Meter(pid) as cost:`` measures the server's CPU and peak RSS over the block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cost = Cost()
        self._cpu = 0.0
        self._rss = 0

    def __enter__(self) -> Cost:
        reset_peak_rss(self.pid)
        self._rss = rss_bytes(self.pid)
        self._cpu = cpu_seconds(self.pid)
        return self.cost

    def __exit__(self, *exc: object) -> None:
        self.cost.cpu_seconds = cpu_seconds(self.pid) - self._cpu
        self.cost.peak_rss_growth = max(0, peak_rss_bytes(self.pid) - self._rss)
        self.cost.rss_after = rss_bytes(self.pid)

"""The results of one run: rows, targets, the printed tables and the JSON figures."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .timing import Measurement


@dataclass
class Row:
    """One line of the main table. ``key`` is stable (JSON, tests); ``label`` is for people."""

    model: str  # the model, or the generator for Generate rows
    key: str  # e.g. "ort_best", "tiny_on_c32", "generate_c8"
    label: str
    batch: int  # items per call or request
    concurrency: int | None  # None: in-process, back to back
    m: Measurement
    limit_model: str  # whose raw ORT best batch is the limit for the ratio
    server: dict[str, float] = field(default_factory=dict)  # ServerCounters.since(...)


@dataclass
class ServerRun:
    kind: str  # "museforge" or "naive"
    batching: bool | None
    banner_s: float  # spawn -> banner line on stdout
    ready_s: float | None  # spawn -> health Check SERVING (museforge only)
    rss_warm_mb: float | None
    rss_after_mb: float | None


@dataclass
class Target:
    what: str
    key: str  # stable id, e.g. "image.digits/tiny_batching_gain"
    value: float | None  # None: not measured in this run
    bound: float
    measured: str  # value as printed
    ok: bool | None  # None: not measured


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    servers: list[ServerRun] = field(default_factory=list)
    sweeps: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> engine -> batch -> M
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)  # generator -> stage figures
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def find(self, model: str, key: str) -> Row | None:
        return next((r for r in self.rows if r.model == model and r.key == key), None)

    def limit(self, model: str) -> float:
        row = self.find(model, "ort_best")
        return row.m.items_per_s if row else 0.0


# ---------------------------------------------------------------- targets


def _ratio(a: Row | None, b: Row | None) -> float | None:
    if a is None or b is None or not b.m.items_per_s:
        return None
    return a.m.items_per_s / b.m.items_per_s


def _check(what: str, key: str, value: float | None, bound: float, fmt: str,
           below: bool = False, shown: str = "") -> Target:
    if value is None:
        return Target(what, key, None, bound, "not measured", None)
    ok = value < bound if below else value >= bound
    return Target(what, key, value, bound, shown or fmt.format(value), ok)


def targets(res: Results, models: list[str], generators: dict[str, str]) -> list[Target]:
    """The issue's targets, evaluated on this run's rows (reported, never asserted)."""
    found: list[Target] = []
    for gen, model in generators.items():
        best = max((r for r in res.rows if r.model == gen and r.key.startswith("generate_c")),
                   key=lambda r: r.m.items_per_s, default=None)
        found.append(_check(f"{gen}: Generate (best concurrency) ≥ 0.85× raw ORT same work",
                            f"{gen}/generate_vs_ort", _ratio(best, res.find(model, "ort_same_work")),
                            0.85, "{:.2f}×"))
    for model in models:
        on = res.find(model, "tiny_on_c32")
        found.append(_check(f"{model}: tiny c=32, batching on ≥ 3× batching off",
                            f"{model}/tiny_batching_gain",
                            _ratio(on, res.find(model, "tiny_off_c32")), 3.0, "{:.2f}×"))
        found.append(_check(f"{model}: tiny c=32, batching on ≥ 1.5× naive server",
                            f"{model}/tiny_vs_naive",
                            _ratio(on, res.find(model, "naive_c32")), 1.5, "{:.2f}×"))
        c1, ort1 = res.find(model, "tiny_on_c1"), res.find(model, "ort_b1")
        over = c1.m.p50_ms - ort1.m.p50_ms if c1 and ort1 and c1.m.calls and ort1.m.calls else None
        found.append(_check(f"{model}: p50 at c=1, batching on ≤ raw ORT batch-1 p50 + 1.5 ms",
                            f"{model}/p50_c1_overhead_ms", over, 1.5, "", below=True,
                            shown=f"{c1.m.p50_ms:.2f} vs {ort1.m.p50_ms:.2f} + 1.5 ms"
                            if over is not None and c1 and ort1 else ""))
        found.append(_check(f"{model}: raw ORT ≥ 1.5× PyTorch eager at batch 1",
                            f"{model}/ort_vs_torch_b1",
                            _ratio(ort1, res.find(model, "torch_b1")), 1.5, "{:.2f}×"))
    own = [s for s in res.servers if s.kind == "museforge"]
    ready = [s.ready_s for s in own if s.ready_s is not None]
    found.append(_check("museforge ready (spawn → health SERVING) < 2 s, worst start",
                        "server/ready_s", max(ready) if ready else None, 2.0, "{:.2f} s", below=True))
    rss = [v for s in own for v in (s.rss_warm_mb, s.rss_after_mb) if v is not None]
    found.append(_check("museforge RSS, all built-in models loaded < 400 MB, worst",
                        "server/rss_mb", max(rss) if rss else None, 400.0, "{:.0f} MB", below=True))
    return found


# ---------------------------------------------------------------- printing


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _server_cell(row: Row) -> str:
    s = row.server
    if not s or not s.get("executions"):
        return ""
    cpu = row.m.server_cpu
    per_call = cpu * row.m.wall_s / row.m.calls * 1e3 if cpu is not None and row.m.calls else None
    return (f"b={s['exec_batch']:.1f} q={s['queue_ms']:.2f} run={s['run_ms']:.2f}"
            + (f" cpu/req={per_call:.2f}" if per_call is not None else ""))


def table(rows: list[list[str]], header: list[str], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = []
    for k, line in enumerate([header, *rows]):
        cells = [c.rjust(w) if i in right and k else c.ljust(w)
                 for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(res: Results, found: list[Target]) -> str:
    header = ["model", "row", "batch", "conc", "items/s", "p50 ms", "p99 ms", "× limit ²",
              "client CPU ³", "server CPU ³", "server side (ms) ⁵"]
    lines: list[list[str]] = []
    for r in res.rows:
        limit = res.limit(r.limit_model)
        failed = r.m.errors and not r.m.calls
        lines.append([
            r.model, r.label, str(r.batch), "-" if r.concurrency is None else str(r.concurrency),
            "ERROR" if failed else f"{r.m.items_per_s:,.0f}",
            _num(r.m.p50_ms if r.m.calls else None, "{:.2f}"),
            _num(r.m.p99_ms if r.m.calls else None, "{:.2f}"),
            _num(r.m.items_per_s / limit if limit else None, "{:.2f}"),
            _num(None if r.m.client_cpu is None else r.m.client_cpu * 100, "{:.0f}%"),
            _num(None if r.m.server_cpu is None else r.m.server_cpu * 100, "{:.0f}%"),
            _server_cell(r),
        ])
    out = [table(lines, header, right={2, 3, 4, 5, 6, 7, 8, 9})]
    out.append("")
    out.append(table([[t.what, t.measured, {True: "PASS", False: "MISS", None: "n/a"}[t.ok]]
                      for t in found], ["target", "measured", ""], right={1}))
    out.append("")
    out.extend(res.notes)
    return "\n".join(out)


def footnotes(cores: int) -> list[str]:
    return [
        "¹ PyTorch eager rows run the model's torch architecture with random weights: compute "
        "cost does not depend on weight values.",
        "² × limit = throughput ÷ raw ONNX Runtime at its best batch size, in-process (the limit).",
        f"³ client/server CPU = process CPU time ÷ wall time over the measured window (100% = one "
        f"core; this machine has {cores}). The load generator runs in its own process; a client "
        "near 100% means the client, not the server, bounds that row. In-process rows show the "
        "measuring process's own CPU (with ORT's or torch's thread pool) as server CPU.",
        "⁴ Generate rows count images per second; each request asks for its count and gets PNGs "
        "with provenance, so they include encoding (its share is measured in-process below).",
        "⁵ From the server's own ModelStatistics over the row: b = mean batch per session run, "
        "q = mean queue wait per request, run = mean session run, cpu/req = server CPU per request.",
    ]


# ---------------------------------------------------------------- JSON


def to_json(res: Results, found: list[Target]) -> dict[str, Any]:
    def row(r: Row) -> dict[str, Any]:
        limit = res.limit(r.limit_model)
        return {
            "model": r.model, "key": r.key, "label": r.label, "batch": r.batch,
            "concurrency": r.concurrency, **asdict(r.m),
            "ratio_to_limit": r.m.items_per_s / limit if limit else None,
            "server": r.server,
        }

    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "config": res.config,
        "rows": [row(r) for r in res.rows],
        "servers": [asdict(s) for s in res.servers],
        "sweeps": res.sweeps,
        "generate_split": res.splits,
        "targets": [asdict(t) for t in found],
    }


def write_json(path: Path, res: Results, found: list[Target]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(res, found), indent=2), "utf-8")

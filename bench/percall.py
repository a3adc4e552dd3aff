"""``python -m bench.percall``: the cost of a call, side by side in one run.

Tiny OIP ``ModelInfer`` requests (one ``image.digits`` sample each) at concurrency 32, and
``Generate`` (64 images) at concurrency 8, against fresh server processes:

- the naive peer (sync gRPC, one ``session.run`` per call);
- museforge as of an earlier commit (``--before-commit``, built once into a cached
  virtualenv, as ``bench.adversarial`` does), one process;
- the working tree, ``--workers 1`` and ``--workers 2``.

Rows are measured in interleaved rounds (``--rounds``) and the median round is shown: on a
shared machine one round can be slowed by others. The load generator runs in its own
process and gives each stream its own connection, as that many clients would
(``--connections`` to share fewer; several server processes on one port share
connections, not calls). Server CPU and RSS count the server's whole process tree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from .adversarial import BEFORE_COMMIT, before_python, isolation
from .discover import discover, make_feed
from .loadgen import GENERATE, OIP_INFER, LoadSpec, generate_request, oip_request, run_load, tree_pids
from .servers import ServerProcess, ServerSettings, museforge_server, naive_server, wait_serving
from .timing import Measurement, rss_mb

MODEL = "image.digits"


@dataclass(frozen=True)
class Case:
    label: str
    start: Callable[[], ServerProcess]
    method: str
    museforge: bool = True


@dataclass
class Run:
    measured: Measurement
    rss_mb: float  # the server's process tree after the row


@dataclass
class Rows:
    """Every round's measurement per (row label, method)."""

    found: dict[tuple[str, str], list[Run]] = field(default_factory=dict)

    def median(self, case: Case) -> Run | None:
        runs = sorted(self.found.get((case.label, case.method), []), key=lambda r: r.measured.items_per_s)
        return runs[len(runs) // 2] if runs else None


def progress(message: str) -> None:
    print(f"[bench.percall] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.percall", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=4.0, help="measured seconds per row (4)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each row (1)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is shown (3)")
    p.add_argument("--concurrency", type=int, default=32, help="streams of tiny requests (32)")
    p.add_argument("--generate-concurrency", type=int, default=8, help="Generate streams (8)")
    p.add_argument("--connections", type=int, default=0,
                   help="client connections (0: one per stream, as that many clients would open)")
    p.add_argument("--before-commit", default="8cd5284", help="the code before (default 8cd5284)")
    p.add_argument("--before-python", type=Path, help="an interpreter with that code installed")
    p.add_argument("--no-before", action="store_true", help="skip the before rows")
    p.add_argument("--no-generate", action="store_true", help="skip the Generate rows")
    p.add_argument("--quick", action="store_true", help="1 s rows, 0.3 s warm-up, one round")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 1.0, 0.3, 1
    return args


def cases(args: argparse.Namespace, model_path: Path) -> list[Case]:
    settings = ServerSettings()
    found = [Case("naive gRPC server (session.run per call)", partial(naive_server, model_path, MODEL),
                  OIP_INFER, museforge=False)]
    methods = [OIP_INFER] + ([] if args.no_generate else [GENERATE])
    if not args.no_before:
        python = args.before_python or before_python(args.before_commit or BEFORE_COMMIT)
        before = (str(python), *isolation(python))
        found += [Case(f"museforge {args.before_commit or BEFORE_COMMIT} (before)",
                       partial(museforge_server, settings, python=before), m) for m in methods]
    for workers in (1, 2):
        found += [Case(f"museforge now, --workers {workers}", partial(museforge_server, settings, workers),
                       m) for m in methods]
    return found


def measure(pool: ProcessPoolExecutor, case: Case, args: argparse.Namespace, payloads: dict[str, bytes]
            ) -> Run:
    tiny = case.method == OIP_INFER
    with case.start() as server:
        if case.museforge:
            wait_serving(server)
        concurrency = args.concurrency if tiny else args.generate_concurrency
        spec = LoadSpec(server.address, case.method, payloads[case.method], 1 if tiny else 64, concurrency,
                        args.warmup,
                        args.duration, server.pid, connections=args.connections or concurrency)
        measured = pool.submit(run_load, spec).result(timeout=300)
        rss = sum(rss_mb(pid) or 0.0 for pid in tree_pids(server.pid))
    if measured.errors:
        progress(f"  {measured.errors} failed calls, first: {measured.first_error}")
    return Run(measured, rss)


def render(rows: Rows, ordered: list[Case], args: argparse.Namespace) -> str:
    first = rows.median(ordered[0])
    naive = first.measured if first else None
    header = ["row", "call", "conc", "items/s", "p50 ms", "p99 ms", "× naive", "server CPU", "client CPU",
              "server CPU ms/call", "RSS MB"]
    table = []
    for case in ordered:
        run = rows.median(case)
        if run is None or not run.measured.calls:
            continue
        m = run.measured
        tiny = case.method == OIP_INFER
        calls_per_s = m.items_per_s / (1 if tiny else 64)
        ratio = f"{m.items_per_s / naive.items_per_s:.2f}×" if tiny and naive and naive.items_per_s else "-"
        table.append([case.label, "ModelInfer, 1 item" if tiny else "Generate, 64 images",
                      str(args.concurrency if tiny else args.generate_concurrency), f"{m.items_per_s:,.0f}",
                      f"{m.p50_ms:.2f}", f"{m.p99_ms:.2f}", ratio, f"{(m.server_cpu or 0) * 100:.0f}%",
                      f"{(m.client_cpu or 0) * 100:.0f}%",
                      f"{(m.server_cpu or 0) / calls_per_s * 1e3:.3f}" if calls_per_s else "-",
                      f"{run.rss_mb:,.0f}"])
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                          strict=True)))
             for r in [header, ["-" * w for w in widths], *table]]
    connections = f"{args.connections} client connections" if args.connections else \
        "a client connection per stream"
    lines.append(f"{MODEL}; median of {args.rounds} interleaved rounds, {args.duration:g} s each after "
                 f"{args.warmup:g} s warm-up; {connections}; server CPU and RSS = the server's whole "
                 "process tree (100% = one core), RSS after the row.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    catalogue = discover({MODEL})
    if MODEL not in catalogue.models:
        print(f"{MODEL} is not loaded: {catalogue.problems}", file=sys.stderr)
        return 2
    model = catalogue.models[MODEL]
    payloads = {OIP_INFER: oip_request(MODEL, make_feed(model.inputs, 1, axis=model.axis)),
                GENERATE: generate_request(MODEL, 64)}
    ordered = cases(args, model.path)
    rows = Rows()
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        for round_ in range(args.rounds):
            for case in ordered:
                progress(f"round {round_ + 1}/{args.rounds}: {case.label}, "
                         f"{'ModelInfer' if case.method == OIP_INFER else 'Generate'}")
                rows.found.setdefault((case.label, case.method), []).append(
                    measure(pool, case, args, payloads))
    print(render(rows, ordered, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench``: one table, one run, every shipped model.

Order: in-process references first (each in a fresh child process), then museforge with
batching on, with batching off, then the naive peer; the load generator is one spawned
process throughout, so it never shares a GIL with any server.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import grpc

from .discover import (
    Catalogue,
    GeneratorInfo,
    ModelInfo,
    Workload,
    batch_sweep,
    discover,
    make_feed,
    workloads,
)
from .inprocess import Sweep, generate_split, in_child, ort_seconds, ort_sweep, torch_sweep
from .loadgen import GENERATE, OIP_INFER, LoadSpec, generate_request, oip_request, run_load
from .report import Results, Row, ServerRun, footnotes, render, targets, write_json
from .servers import (
    ServerProcess,
    ServerSettings,
    museforge_server,
    naive_server,
    server_counters,
    wait_serving,
)
from .timing import Measurement

# Table order within a model; keys are "<prefix>..." (see Row.key).
ORDER = ["torch_", "ort_", "tiny_on_", "tiny_off_", "naive_", "generate_", "inproc_"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=4.0, help="measured seconds per row (4)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each row (1)")
    p.add_argument("--sweep-duration", type=float, default=None,
                   help="seconds per batch size while looking for the best batch (duration/4)")
    p.add_argument("--quick", action="store_true",
                   help="smoke-test timings: 1 s rows, 0.3 s warm-up, 0.25 s sweep points")
    p.add_argument("--only", default="", help="comma-separated model names (default: all)")
    p.add_argument("--batches", default="1,8,32,64,128,256", help="batch sizes to sweep in-process")
    p.add_argument("--concurrency", default="1,8,32", help="concurrent streams for tiny requests")
    p.add_argument("--generate-concurrency", default="1,8", help="concurrent Generate streams")
    p.add_argument("--count", type=int, default=64, help="images per Generate request (64)")
    p.add_argument("--intra-op-threads", type=int, default=0,
                   help="server's ONNX Runtime intra-op threads (0: ORT's default)")
    p.add_argument("--max-queue-delay-us", type=int, default=None,
                   help="server's batching delay (default: the server's own default)")
    p.add_argument("--server-setting", action="append", default=[], metavar="KEY=VALUE",
                   help="extra museforge.toml line for the server under test (repeatable)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch eager rows")
    p.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.sweep_duration = 1.0, 0.3, 0.25
    if args.sweep_duration is None:
        args.sweep_duration = max(args.duration / 4, 0.25)
    return args


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- in-process


def sweep_rows(res: Results, model: ModelInfo, sweep: Sweep, engine: str, label: str) -> None:
    res.sweeps.setdefault(model.name, {})[engine] = {
        "best_batch": sweep.best, "note": sweep.note,
        "sweep": {b: asdict(m) for b, m in sweep.sweep.items()},
        "full": {b: asdict(m) for b, m in sweep.full.items()},
    }
    if not sweep.full:
        return
    first = min(sweep.full)
    res.rows.append(Row(model.name, f"{engine}_b1", f"{label}, batch 1", first, None,
                        sweep.full[first], model.name))
    res.rows.append(Row(model.name, f"{engine}_best", f"{label}, best batch", sweep.best, None,
                        sweep.full[sweep.best], model.name))


@dataclass(frozen=True)
class Case:
    """One generator workload with its resolved image count."""

    gen: GeneratorInfo
    work: Workload
    count: int

    @property
    def main(self) -> bool:
        return self.work.key == ""

    def label(self, text: str) -> str:
        return text if self.main else f"{text}, {self.work.label}"


def generate_cases(args: argparse.Namespace, cat: Catalogue) -> list[Case]:
    cases = []
    for gen in cat.generators.values():
        for work in workloads(gen.name):
            wanted = work.count or args.count
            cases.append(Case(gen, work, min(wanted, gen.max_count or wanted, 256)))
    return cases


def run_inprocess(args: argparse.Namespace, cat: Catalogue, res: Results, cases: list[Case]) -> None:
    """PyTorch and ORT sweeps per model, the generate split per generator workload."""
    timeout = 300 + 60 * args.duration
    ort_sweeps: dict[str, Sweep] = {}
    torch_ok = not args.no_torch and importlib.util.find_spec("torch") is not None
    for model in cat.models.values():
        batches = batch_sweep(model, tuple(ints(args.batches)))
        same = sorted({c.count for c in cases if c.main and model.name in c.gen.models
                       and c.count <= max(model.max_batch_size, 1)})
        if torch_ok:
            progress(f"{model.name}: PyTorch eager sweep {batches}")
            sweep = in_child(torch_sweep, model, batches, args.warmup, args.sweep_duration,
                             args.duration, timeout=timeout)
            if sweep.note:
                res.notes.append(f"{model.name}: no PyTorch rows ({sweep.note}).")
            sweep_rows(res, model, sweep, "torch", "PyTorch eager, in-process ¹")
        progress(f"{model.name}: ONNX Runtime sweep {batches}")
        sweep = ort_sweeps[model.name] = in_child(
            ort_sweep, model, batches, same, args.warmup, args.sweep_duration, args.duration,
            timeout=timeout)
        sweep_rows(res, model, sweep, "ort", "raw ONNX Runtime, in-process")
        for c in same:
            res.rows.append(Row(model.name, "ort_same_work",
                                f"raw ORT batch {c} (one Generate's tensors)", c, None,
                                sweep.full[c], model.name))
    for case in cases:
        gen, count, model = case.gen, case.count, cat.models[case.gen.models[0]]
        if not case.main:
            # The same tensors at this workload's size: its own raw-ORT reference row.
            progress(f"{model.name}: ONNX Runtime batch {count}, {case.work.label}")
            sized = replace(model, axis=case.work.axis)
            own = in_child(ort_sweep, sized, [count], [], args.warmup, args.sweep_duration,
                           args.duration, timeout=timeout)
            res.rows.append(Row(model.name, f"ort_same_work{case.work.key}",
                                case.label(f"raw ORT batch {count} (one Generate's tensors)"),
                                count, None, own.full[count], ""))
        progress(f"{gen.name}: in-process generate + encode, count {count}, {case.work.label}")
        split = in_child(generate_split, gen, case.work.params, count, args.warmup, args.duration,
                         timeout=timeout)
        res.rows.append(Row(gen.name, f"inproc_pipeline{case.work.key}",
                            case.label(f"Engine in-process: generate + PNG, count {count}"), count,
                            None, split.pipeline, gen.models[0] if case.main else ""))
        res.splits[gen.name + case.work.key] = asdict(split)
        total = split.generate_s + split.encode_s
        runs = ", ".join(f"{n} × batch {b}" for b, n in sorted(split.executions.items()))
        ort = ort_seconds(ort_sweeps[gen.models[0]], count) if case.main else None
        res.notes.append(
            f"{case.label(gen.name)}, one request of {count} in-process: generator "
            f"{split.generate_s * 1e3:.1f} ms (model runs: {runs or 'none'}), PNG encoding "
            f"{split.encode_s * 1e3:.1f} ms = {split.encode_s / total:.0%} of {total * 1e3:.1f} ms"
            + (f"; raw ORT batch {count} alone: {ort * 1e3:.1f} ms." if ort else ".")
        )


# ---------------------------------------------------------------- servers


def warm_up(address: str, cat: Catalogue, cases: list[Case]) -> None:
    """A few calls per model and generator, so RSS is read with every path exercised."""
    with grpc.insecure_channel(address) as channel:
        infer = channel.unary_unary(OIP_INFER, request_serializer=None, response_deserializer=None)
        generate = channel.unary_unary(GENERATE, request_serializer=None, response_deserializer=None)
        for model in cat.models.values():
            payload = oip_request(model.name, make_feed(model.inputs, 1, axis=model.axis))
            for _ in range(20):
                infer(payload, timeout=30)
        for case in cases:
            generate(generate_request(case.gen.name, case.count, case.work.params), timeout=120)


def load_row(pool: ProcessPoolExecutor, server: ServerProcess, args: argparse.Namespace,
             payload: bytes, method: str, items: int, concurrency: int,
             stats_model: str | None) -> tuple[Measurement, dict[str, float]]:
    before = server_counters(server.address, stats_model) if stats_model else None
    spec = LoadSpec(server.address, method, payload, items, concurrency, args.warmup,
                    args.duration, server.pid)
    measured = pool.submit(run_load, spec).result(timeout=120 + 3 * (args.warmup + args.duration))
    if measured.errors:
        progress(f"  {measured.errors} failed calls, first: {measured.first_error}")
    after = server_counters(server.address, stats_model) if stats_model and before else None
    return measured, (after.since(before) if after and before else {})


def run_museforge(pool: ProcessPoolExecutor, args: argparse.Namespace, cat: Catalogue,
                  res: Results, cases: list[Case], batching: bool) -> None:
    mode = "on" if batching else "off"
    progress(f"museforge serve, batching {mode}")
    settings = ServerSettings(batching=batching, max_queue_delay_us=args.max_queue_delay_us,
                              intra_op_threads=args.intra_op_threads,
                              extra=tuple(s.replace("=", " = ", 1) for s in args.server_setting))
    with museforge_server(settings) as server:
        ready = wait_serving(server)
        warm_up(server.address, cat, cases)
        rss_warm = server.rss_mb()
        for model in cat.models.values():
            payload = oip_request(model.name, make_feed(model.inputs, 1, axis=model.axis))
            for c in ints(args.concurrency):
                progress(f"  {model.name}: tiny ModelInfer, concurrency {c}")
                m, s = load_row(pool, server, args, payload, OIP_INFER, 1, c, model.name)
                res.rows.append(Row(model.name, f"tiny_{mode}_c{c}",
                                    f"museforge OIP batch-1 requests, batching {mode}", 1, c, m,
                                    model.name, s))
        if batching:
            for case in cases:
                gen, count = case.gen, case.count
                payload = generate_request(gen.name, count, case.work.params)
                for c in ints(args.generate_concurrency):
                    progress(f"  {gen.name}: Generate count {count}, concurrency {c}, {case.work.label}")
                    m, s = load_row(pool, server, args, payload, GENERATE, count, c, gen.models[0])
                    res.rows.append(Row(gen.name, f"generate{case.work.key}_c{c}",
                                        case.label(f"museforge Generate, count {count} ⁴"), count,
                                        c, m, gen.models[0] if case.main else "", s))
        res.servers.append(ServerRun("museforge", batching, server.banner_s, ready, rss_warm,
                                     server.rss_mb()))


def run_naive(pool: ProcessPoolExecutor, args: argparse.Namespace, cat: Catalogue,
              res: Results) -> None:
    c = max(ints(args.concurrency))
    for model in cat.models.values():
        progress(f"naive server: {model.name}, concurrency {c}")
        with naive_server(model.path, model.name) as server:
            payload = oip_request(model.name, make_feed(model.inputs, 1, axis=model.axis))
            rss_warm = server.rss_mb()
            m, _ = load_row(pool, server, args, payload, OIP_INFER, 1, c, None)
            res.rows.append(Row(model.name, f"naive_c{c}", "naive gRPC server (session.run per call)",
                                1, c, m, model.name))
            res.servers.append(ServerRun("naive", None, server.banner_s, None, rss_warm,
                                         server.rss_mb()))


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    only = {n.strip() for n in args.only.split(",") if n.strip()} or None
    progress("discovering shipped models")
    cat = discover(only)
    for problem in cat.problems:
        progress(f"model not loaded, skipped: {problem}")
    if not cat.models:
        print("no shipped model loaded" + (f" matching {sorted(only)}" if only else ""),
              file=sys.stderr)
        return 2
    res = Results(config={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()})
    res.config["server_settings"] = asdict(ServerSettings(
        max_queue_delay_us=args.max_queue_delay_us, intra_op_threads=args.intra_op_threads))
    cases = generate_cases(args, cat)
    run_inprocess(args, cat, res, cases)
    # One load generator process for every gRPC row: spawned once, never forked from here.
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        run_museforge(pool, args, cat, res, cases, batching=True)
        run_museforge(pool, args, cat, res, cases, batching=False)
        run_naive(pool, args, cat, res)
    res.rows.sort(key=lambda r: (r.model, next(i for i, p in enumerate(ORDER) if r.key.startswith(p))))
    for s in res.servers:
        extra = "" if s.ready_s is None else f", health SERVING {s.ready_s:.2f} s"
        res.notes.append(
            f"{s.kind} server{'' if s.batching is None else ' batching ' + ('on' if s.batching else 'off')}: "
            f"banner {s.banner_s:.2f} s{extra} after spawn; RSS {s.rss_warm_mb or 0:.0f} MB warm, "
            f"{s.rss_after_mb or 0:.0f} MB after load.")
    for gen in cat.generators.values():
        best = max((r for r in res.rows if r.model == gen.name and r.key.startswith("generate_c")),
                   key=lambda r: r.m.items_per_s, default=None)
        inproc = res.find(gen.name, "inproc_pipeline")
        if best and inproc and inproc.m.items_per_s:
            # The fair ceiling for a server that must also encode: the same pipeline, no gRPC.
            res.notes.append(
                f"{gen.name}: best Generate row (c={best.concurrency}) = "
                f"{best.m.items_per_s / inproc.m.items_per_s:.2f}× the in-process pipeline "
                "(same work including PNG encoding).")
    res.notes = footnotes(os.cpu_count() or 1) + res.notes
    res.notes.append(f"Measured {args.duration:g} s per row after {args.warmup:g} s warm-up (a row whose "
                     "calls outlast that, to its first completed call); "
                     f"whole run {time.perf_counter() - started:.0f} s.")
    found = targets(res, list(cat.models), {g.name: g.models[0] for g in cat.generators.values()})
    print(render(res, found))
    if args.json:
        write_json(args.json, res, found)
    return 0


if __name__ == "__main__":
    sys.exit(main())

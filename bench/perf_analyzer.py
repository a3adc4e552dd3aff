"""Triton's own load tool, perf_analyzer, against ``museforge serve``: every model at concurrency 1 and 16.

The PyPI ``perf-analyzer`` wheel's binary needs glibc 2.38 (and pip may only see a
metadata-only 0.1.0), so this takes the binary that the ``tritonclient`` 2.41.0 wheel
still shipped, built for glibc 2.34. It links the CUDA 12 runtime (``libcudart.so.12``,
from the ``nvidia-cuda-runtime-cu12`` wheel; no GPU is needed, the library only has to load)
and ``libb64.so.0d`` (Debian/Ubuntu: ``apt-get install libb64-0d``). Both wheels are
fetched once with pip by exact version, checked against their sha256 and unpacked under
``$XDG_CACHE_HOME/museforge/perf_analyzer``.

Each model gets one request shape: its fixed axes, 64 for a dynamic image side (16 noise
cells for image.texture, as its main workload), and values inside every declared range,
handed to perf_analyzer as ``--input-data`` JSON (its default random data would be refused:
labels and noise levels have ranges). Usage::

    python -m bench.perf_analyzer                 # starts a server; gRPC; 3 s windows
    python -m bench.perf_analyzer --protocol http --server 127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .discover import ModelInfo, discover, make_feed
from .servers import ServerProcess, ServerSettings, museforge_server, wait_serving


@dataclass(frozen=True)
class Wheel:
    requirement: str
    file: str
    sha256: str
    member: str  # the path inside the wheel to unpack


PERF_ANALYZER = Wheel("tritonclient==2.41.0", "tritonclient-2.41.0-py3-none-manylinux1_x86_64.whl",
                      "cf4ed5df836fa99937678a9fd852f86ba05c7b83656dd0a540e20afdb9ab4629",
                      "tritonclient-2.41.0.data/data/bin/perf_analyzer")
CUDART = Wheel("nvidia-cuda-runtime-cu12==12.9.79",
               "nvidia_cuda_runtime_cu12-12.9.79-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
               "25bba2dfb01d48a9b59ca474a1ac43c6ebf7011f1b0b8cc44f54eb6ac48a96c3",
               "nvidia/cuda_runtime/lib/libcudart.so.12")
SIDE = 64  # a dynamic image side


def progress(message: str) -> None:
    print(f"[bench.perf_analyzer] {message}", file=sys.stderr, flush=True)


def cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "museforge" / "perf_analyzer"


def unpacked(wheel: Wheel) -> Path:
    """The wheel's member on disk, downloading and checking the wheel the first time."""
    target = cache() / wheel.member
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as scratch:
        progress(f"fetching {wheel.requirement} (once)")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        wheel.requirement, "-d", scratch], check=True)
        path = Path(scratch) / wheel.file
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != wheel.sha256:
            raise SystemExit(f"{wheel.file}: sha256 {digest} is not the recorded {wheel.sha256}")
        with zipfile.ZipFile(path) as archive:
            archive.extract(wheel.member, cache())
    target.chmod(0o755)
    return target


def request_data(model: ModelInfo) -> dict[str, object]:
    """One request's tensors without the batch axis, in perf_analyzer's --input-data form."""
    axis = model.axis if model.axis != 1 else SIDE
    feed = make_feed(model.inputs, 1, axis=axis)
    return {"data": [{name: {"content": value[0].reshape(-1).tolist(), "shape": list(value.shape[1:]) or [1]}
                      for name, value in feed.items()}]}


@dataclass(frozen=True)
class Row:
    model: str
    concurrency: int
    per_second: float
    p50_ms: float
    p99_ms: float


def measure(binary: Path, model: ModelInfo, address: str, args: argparse.Namespace, work: Path) -> list[Row]:
    data = work / f"{model.name}.json"
    data.write_text(json.dumps(request_data(model)), "utf-8")
    report = work / f"{model.name}.csv"
    command = [str(binary), "-m", model.name, "-i", args.protocol, "-u", address,
               "--concurrency-range", "1:16:15", "-p", str(args.window_ms), "--input-data", str(data),
               "--stability-percentage", str(args.stability), "--max-trials", "20", "-f", str(report)]
    env = {**os.environ, "LD_LIBRARY_PATH": str(unpacked(CUDART).parent)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        progress(f"  {model.name}: perf_analyzer exit {done.returncode}: "
                 f"{done.stdout[-600:]}{done.stderr[-600:]}")
        return []
    with report.open() as handle:
        return [Row(model.name, int(r["Concurrency"]), float(r["Inferences/Second"]),
                    float(r["p50 latency"]) / 1000, float(r["p99 latency"]) / 1000)
                for r in csv.DictReader(handle)]


def render(rows: list[Row], args: argparse.Namespace) -> str:
    header = ["model", "concurrency", "infer/s", "p50 ms", "p99 ms"]
    table = [[r.model, str(r.concurrency), f"{r.per_second:,.1f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}"]
             for r in rows]
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths,
                                                                                              strict=True)))
             for line in [header, ["-" * w for w in widths], *table]]
    lines.append(f"perf_analyzer (tritonclient 2.41.0) -i {args.protocol}, batch 1, "
                 f"{args.window_ms} ms windows until stable; one request shape per model "
                 "(see the module doc).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf_analyzer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="an already running server (HOST:PORT of the chosen protocol)")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--window-ms", type=int, default=3000, help="measurement window (3000)")
    parser.add_argument("--models", help="comma-separated model names (default: every model)")
    parser.add_argument("--stability", type=int, default=10,
                        help="percent by which three windows in a row may differ to count as stable (10, "
                             "perf_analyzer's default; raise it on a busy machine)")
    args = parser.parse_args(argv)
    try:
        ctypes.CDLL("libb64.so.0d")
    except OSError:
        print("perf_analyzer needs libb64.so.0d: apt-get install libb64-0d", file=sys.stderr)
        return 2
    if args.protocol == "http" and not args.server:
        parser.error("--protocol http needs --server (the gateway's address)")
    binary = unpacked(PERF_ANALYZER)
    catalogue = discover(set(args.models.split(",")) if args.models else None)
    server: ServerProcess | None = None
    if not args.server:
        server = museforge_server(ServerSettings()).start()
        wait_serving(server)
    try:
        address = args.server or (server.address if server else "")
        rows: list[Row] = []
        with tempfile.TemporaryDirectory() as work:
            for model in catalogue.models.values():
                progress(f"{model.name}")
                rows += measure(binary, model, address, args, Path(work))
    finally:
        if server is not None:
            server.stop()
    print(render(rows, args))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())

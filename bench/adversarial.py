"""``python -m bench.adversarial``: what each hostile request costs the server, before and after.

Each probe (see bench/adversarial_probes.py) runs against a fresh ``museforge serve``
subprocess on 127.0.0.1 for each of two interpreters: the code as committed before the
hardening (built once into a cached virtualenv from ``git archive``) and the code under
test. For each it prints the server's CPU seconds and peak resident memory growth (read
from /proc: utime + stime, and VmHWM after resetting it through clear_refs), the memory
it kept afterwards, the status the caller got, and the latency of grpc.health.v1 Check
calls made every 50 ms meanwhile. Measuring lasts until the server's CPU goes quiet, so
work that outlives the caller's deadline is counted; a server still busy after
``--settle-cap`` seconds is killed, and the next probe gets a new one anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .adversarial_probes import PROBES, Ctx, Outcome, Probe, warm_media
from .report import table
from .servers import MUSEFORGE_BANNER, ROOT, ServerProcess, ServerSettings, wait_serving
from .timing import process_cpu_s, rss_mb

BEFORE_COMMIT = "2c18706"  # the last commit before this hardening
BIG = 1 << 30  # client message limits: only the server's own limits should apply


def progress(message: str) -> None:
    print(f"[adversarial] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the "before" interpreter


def cache_root(commit: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "museforge" / f"bench-before-{commit}"


def before_python(commit: str) -> Path:
    """A virtualenv with museforge as of ``commit`` (built once; later runs reuse it)."""
    root = cache_root(commit)
    python, ready = root / "venv" / "bin" / "python", root / "ready"
    if ready.exists() and python.exists():
        return python
    progress(f"building museforge {commit} into {root} (git archive, venv, pip install --no-deps; once)")
    subprocess.run(["rm", "-rf", str(root)], check=True)
    src = root / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    # No pip inside: the system's pip and setuptools (system site-packages) install into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(root / "venv")], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    str(src)], check=True)
    _match_protobuf(python)
    where = subprocess.run([str(python), *isolation(python), "-c",
                            "import museforge; print(museforge.__file__)"],
                           cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    if not where.startswith(str(root)):
        raise RuntimeError(f"the before copy imports museforge from {where}, not from {root}")
    ready.write_text(commit + "\n")
    return python


def _match_protobuf(python: Path) -> None:
    """Older commits carry protobuf code generated for a newer runtime than this environment's:
    give their virtualenv the runtime its generated code names (system packages stay as they are)."""
    probe = subprocess.run([str(python), *isolation(python), "-c",
                            "import museforge.inference.grpc_service_pb2"],
                           cwd=ROOT, capture_output=True, text=True)
    wanted = re.search(r"gencode (\d+\.\d+\.\d+) runtime", probe.stderr)
    if probe.returncode and wanted:
        progress(f"  its generated code needs protobuf {wanted.group(1)}: installing it into the venv")
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--ignore-installed",
                        f"protobuf=={wanted.group(1)}"], check=True)


def isolation(python: Path) -> list[str]:
    """``-P`` (3.11+): the working tree, the servers' cwd, stays off the server's sys.path."""
    ok = subprocess.run([str(python), "-P", "-c", ""], capture_output=True).returncode == 0
    return ["-P"] if ok else []


# ---------------------------------------------------------------- server counters


def _status_mb(pid: int, key: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak(pid: int) -> None:
    """Start a new peak-RSS window (writing 5 to clear_refs resets VmHWM to VmRSS)."""
    with suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def settle(pid: int, cap_s: float) -> bool:
    """Wait until the server uses < 10% of a core over half a second; False: still busy at cap."""
    deadline = time.monotonic() + cap_s
    last = process_cpu_s(pid)
    while last is not None and time.monotonic() < deadline:
        time.sleep(0.5)
        now = process_cpu_s(pid)
        if now is None or now - last < 0.05:
            return True
        last = now
    return last is None


class HealthSampler:
    """grpc.health.v1 Check every ~50 ms on its own channel, each call timed."""

    def __init__(self, address: str, timeout_s: float) -> None:
        self.address, self.timeout_s = address, timeout_s
        self.latencies_ms: list[float] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=self.timeout_s)
                except grpc.RpcError:
                    self.failed += 1
                self.latencies_ms.append((time.perf_counter() - started) * 1e3)
                self._stop.wait(0.05)

    def __enter__(self) -> HealthSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout_s + 5)


@dataclass
class Sample:
    """One probe against one server."""

    cpu_s: float | None = None
    peak_growth_mb: float | None = None
    kept_mb: float | None = None  # RSS once the server was quiet, minus RSS before the probe
    status: str = "-"
    note: str = ""
    health_p50_ms: float | None = None
    health_max_ms: float | None = None
    health_failed: int = 0
    settled: bool = True  # False: still busy at the cap, killed (cpu_s is a lower bound)
    exit_code: int | None = None  # set when the server died during the probe


# ---------------------------------------------------------------- one probe, one server


def server_toml(kind: str, data_dir: Path) -> str:
    extra: tuple[str, ...] = ()
    if kind == "jobs":
        for sub in ("in", "out"):
            (data_dir / sub).mkdir(parents=True, exist_ok=True)
        extra = (f'job_input_roots = ["{data_dir / "in"}"]', f'job_output_roots = ["{data_dir / "out"}"]')
    elif kind == "auth":
        extra = ("auth = true",)
    return ServerSettings(extra=extra).toml()


@contextmanager
def serving(python: Path, kind: str) -> Iterator[tuple[ServerProcess, Path, str]]:
    """A fresh server with a private XDG_DATA_HOME; yields it, that directory and an API key."""
    server = ServerProcess([str(python), *isolation(python), "-m", "museforge.cli", "serve",
                            "--address", "127.0.0.1:0"], MUSEFORGE_BANNER)
    home = Path(server.workdir.name) / "data"
    home.mkdir()
    config = Path(server.workdir.name) / "museforge.toml"
    config.write_text(server_toml(kind, home), "utf-8")
    server.argv += ["--config", str(config)]
    server.env["XDG_DATA_HOME"] = str(home)
    key = ""
    if kind == "auth":  # the server reads its keys when it starts
        key = subprocess.run([str(python), "-m", "museforge.cli", "keys", "create", "--name", "bench",
                              "--scopes", "read", "--config", str(config)],
                             env={**os.environ, **server.env}, cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()[0]
    with server:
        wait_serving(server)
        yield server, home, key


def warm_up(ctx: Ctx, media: list[bytes]) -> None:
    """One small call down every path, so lazy imports and first allocations are not counted."""
    from museforge.inference import grpc_service_pb2 as oip
    from museforge.inference import grpc_service_pb2_grpc as oip_grpc
    from museforge.v1 import museforge_pb2 as pb
    from museforge.v1 import museforge_pb2_grpc as pb_grpc

    stub = pb_grpc.MuseforgeStub(ctx.channel)
    stub.Generate(pb.GenerateRequest(generator="image.digits", seed=1), timeout=60)
    for data in media:
        stub.ApplyEffect(pb.ApplyEffectRequest(effect="effect.denoise",
                                               inputs=[pb.MediaInput(data=data)]), timeout=60)
    request = oip.ModelInferRequest(model_name="image.digits")
    request.inputs.add(name="z", datatype="FP32", shape=[1, 100]).contents.fp32_contents.extend([0.0] * 100)
    request.inputs.add(name="label", datatype="INT64", shape=[1]).contents.int64_contents.append(3)
    oip_grpc.GRPCInferenceServiceStub(ctx.channel).ModelInfer(request, timeout=60)


def measure(python: Path, probe: Probe, payload: object, args: argparse.Namespace,
            media: list[bytes]) -> Sample:
    sample = Sample()
    options = [("grpc.max_send_message_length", BIG), ("grpc.max_receive_message_length", BIG)]
    with serving(python, probe.server) as (server, home, key), \
            grpc.insecure_channel(server.address, options=options) as channel:
        ctx = Ctx(server.address, channel, args.scale, home,
                  (("authorization", f"Bearer {key}"),) if key else ())
        if probe.server != "auth":
            warm_up(ctx, media)
        pid = server.pid
        settle(pid, 10.0)
        reset_peak(pid)
        rss0, cpu0 = rss_mb(pid), process_cpu_s(pid)
        with HealthSampler(server.address, args.settle_cap) as health:
            try:
                outcome = probe.send(ctx, payload)
            except Exception as exc:  # the bench goes on; the row says what broke
                outcome = Outcome("CLIENT ERROR", f"{type(exc).__name__}: {exc}"[:200])
            sample.settled = settle(pid, args.settle_cap)
            cpu1, peak, rss1 = process_cpu_s(pid), _status_mb(pid, "VmHWM"), rss_mb(pid)
            if not sample.settled and server.proc is not None:
                server.proc.kill()  # wedged: the next probe gets a new server anyway
        sample.status, sample.note = outcome.status, outcome.note
        if cpu0 is not None and cpu1 is not None:
            sample.cpu_s = cpu1 - cpu0
        if rss0 is not None and peak is not None:
            sample.peak_growth_mb = max(0.0, peak - rss0)
        if rss0 is not None and rss1 is not None:
            sample.kept_mb = rss1 - rss0
        if health.latencies_ms:
            sample.health_p50_ms = statistics.median(health.latencies_ms)
            sample.health_max_ms = max(health.latencies_ms)
        sample.health_failed = health.failed
        if server.proc is not None and sample.settled:
            sample.exit_code = server.proc.poll()
    return sample


def run_side(python: Path, probe: Probe, payload: object, args: argparse.Namespace,
             media: list[bytes]) -> Sample:
    """``measure``, with a second try when the server does not start or warm up."""
    error: Exception | None = None
    for attempt in range(2):
        if attempt:
            progress("  the server did not start or warm up; trying once more in 5 s")
            time.sleep(5)
        try:
            return measure(python, probe, payload, args, media)
        except (RuntimeError, subprocess.CalledProcessError, grpc.RpcError) as exc:
            error = exc
    text = getattr(error, "stderr", None) or str(error)
    last = [line for line in str(text).splitlines() if line.strip()][-1:]  # a traceback's last line
    return Sample(status="NO SERVER", note=f"{type(error).__name__}: {''.join(last)}"[:300])


# ---------------------------------------------------------------- report


def _num(value: float | None, fmt: str, bound: bool = False) -> str:
    return "-" if value is None else ("≥" if bound else "") + fmt.format(value)


def _status(s: Sample) -> str:
    if s.exit_code is not None:
        return f"{s.status} (server died)"
    return s.status if s.settled else f"{s.status} (killed)"


def _health(s: Sample) -> str:
    if s.health_max_ms is None or s.health_p50_ms is None:
        return "-"
    return f"{s.health_p50_ms:.0f} / {s.health_max_ms:,.0f}"


def render(results: list[tuple[Probe, Sample, Sample]], args: argparse.Namespace) -> str:
    header = ["probe", "CPU s before", "after", "peak MB before", "after", "kept MB before", "after",
              "status before", "after", "health ms before", "after"]
    rows = []
    for probe, before, after in results:
        rows.append([probe.name, *(_num(s.cpu_s, "{:.1f}", not s.settled) for s in (before, after)),
                     *(_num(s.peak_growth_mb, "{:,.0f}") for s in (before, after)),
                     *(_num(s.kept_mb, "{:+,.0f}") for s in (before, after)),
                     *(_status(s) for s in (before, after)), *(_health(s) for s in (before, after))])
    lines = [table(rows, header, right={1, 2, 3, 4, 5, 6, 9, 10}), ""]
    lines.append(f"before: {args.before_python} (museforge {args.before_commit}); "
                 f"after: {args.after_python}; --scale {args.scale:g}")
    lines.append("CPU s: server CPU (user + system, all threads) from the call until it went quiet; "
                 "peak MB: peak RSS above the RSS at the start; kept MB: RSS once quiet minus RSS at "
                 "the start; health ms: p50 / max of Health.Check every 50 ms meanwhile; killed: "
                 f"still busy {args.settle_cap:g} s after the call (CPU is a lower bound).")
    for probe, before, after in results:
        lines.append(f"{probe.name}: {probe.what}.")
        for side, s in (("before", before), ("after", after)):
            facts = [s.note] if s.note else []
            if s.health_failed:
                facts.append(f"{s.health_failed} health checks failed")
            if s.exit_code is not None:
                facts.append(f"server exited with code {s.exit_code}")
            if facts:
                lines.append(f"    {side}: {'; '.join(facts)}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.adversarial", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before-python", type=Path, default=None,
                   help="interpreter with the code before the fixes (default: a cached venv built "
                        "from --before-commit)")
    p.add_argument("--before-commit", default=BEFORE_COMMIT, help=f"(default {BEFORE_COMMIT})")
    p.add_argument("--after-python", type=Path, default=Path(sys.executable),
                   help="interpreter with the code under test (default: this one)")
    p.add_argument("--only", default="", help="comma-separated probe names: "
                   + ", ".join(p.name for p in PROBES))
    p.add_argument("--scale", type=float, default=1.0,
                   help="payload sizes and probe durations, as a fraction of the defaults (1)")
    p.add_argument("--settle-cap", type=float, default=60.0,
                   help="seconds a server may stay busy after a call before it is killed (60)")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args(argv)
    if not 0 < args.scale <= 1:
        p.error("--scale must be in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = wanted - {p.name for p in PROBES}
    if unknown:
        print(f"unknown probes {sorted(unknown)}", file=sys.stderr)
        return 2
    probes = [p for p in PROBES if not wanted or p.name in wanted]
    started = time.perf_counter()
    if args.before_python is None:
        args.before_python = before_python(args.before_commit)
    media = warm_media()
    results = []
    for probe in probes:
        progress(f"{probe.name}: building the payload")
        payload = probe.build(args.scale)
        samples = []
        for side, python in (("before", args.before_python), ("after", args.after_python)):
            progress(f"{probe.name}: {side}")
            sample = run_side(python, probe, payload, args, media)
            progress(f"  {_status(sample)}, CPU {_num(sample.cpu_s, '{:.1f}')} s, peak "
                     f"{_num(sample.peak_growth_mb, '{:,.0f}')} MB, health {_health(sample)} ms")
            samples.append(sample)
        results.append((probe, samples[0], samples[1]))
        del payload
    print(render(results, args))
    print(f"whole run {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "probes": [{"name": p.name, "what": p.what, "before": asdict(b), "after": asdict(a)}
                       for p, b, a in results],
        }, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

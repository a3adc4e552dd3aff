"""Server subprocesses for the benchmark: ``museforge serve`` and the naive peer.

Each is a real process on 127.0.0.1 with an ephemeral port read from its banner line,
stopped with SIGTERM (then killed if it does not exit within a few seconds).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .timing import rss_mb

ROOT = Path(__file__).resolve().parent.parent
MUSEFORGE_BANNER = re.compile(r"museforge serving on (\S+)")
NAIVE_BANNER = re.compile(r"naive serving on (\S+)")


@dataclass(frozen=True)
class ServerSettings:
    """The museforge.toml keys the benchmark varies (see museforge.config.Settings)."""

    batching: bool = True
    max_queue_delay_us: int | None = None  # None: the server's default
    model_instances: int = 1
    intra_op_threads: int = 0
    max_count: int = 256
    extra: tuple[str, ...] = ()  # further "key = value" lines, from --server-setting

    def toml(self) -> str:
        delay = [] if self.max_queue_delay_us is None else [
            f"max_queue_delay_us = {self.max_queue_delay_us}"]
        return "\n".join([
            f"batching = {'true' if self.batching else 'false'}",
            *delay,
            *self.extra,
            f"model_instances = {self.model_instances}",
            f"intra_op_threads = {self.intra_op_threads}",
            f"max_count = {self.max_count}",
            'log_level = "WARNING"',
            "",
        ])


class ServerProcess:
    """A server subprocess; ``address`` and ``pid`` are set once its banner appears."""

    def __init__(self, argv: list[str], banner: re.Pattern[str], config: str | None = None,
                 timeout_s: float = 60.0, env: dict[str, str] | None = None) -> None:
        self.workdir = tempfile.TemporaryDirectory(prefix="museforge-bench-")
        self.log = Path(self.workdir.name) / "output.log"
        self.argv = list(argv)
        if config is not None:  # a TOML settings file, handed over with --config
            path = Path(self.workdir.name) / "museforge.toml"
            path.write_text(config, "utf-8")
            self.argv += ["--config", str(path)]
        self.banner = banner
        self.timeout_s = timeout_s
        self.env = dict(env or {})  # added to this process's environment
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.spawned = 0.0  # perf_counter at spawn
        self.banner_s = 0.0  # spawn -> banner line

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace") if self.log.exists() else ""

    def start(self) -> ServerProcess:
        # Output goes to a file, not a pipe: nobody has to drain it while load runs.
        with open(self.log, "wb") as sink:
            self.spawned = time.perf_counter()
            self.proc = subprocess.Popen(self.argv, stdout=sink, stderr=subprocess.STDOUT,
                                         cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1",
                                                        # the server's databases, gone with the run
                                                        "XDG_DATA_HOME": self.workdir.name, **self.env})
        deadline = self.spawned + self.timeout_s
        while time.perf_counter() < deadline:
            match = self.banner.search(self.output())
            if match:
                self.address = match.group(1)
                self.banner_s = time.perf_counter() - self.spawned
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.005)
        self.stop()
        name = self.argv[self.argv.index("-m") + 1] if "-m" in self.argv else self.argv[0]
        raise RuntimeError(f"{name} did not start:\n{self.output()[-4000:]}")

    def rss_mb(self) -> float | None:
        return rss_mb(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        self.workdir.cleanup()


def museforge_server(settings: ServerSettings, workers: int = 1,
                     python: Sequence[str] = (sys.executable,)) -> ServerProcess:
    """``python -m museforge.cli serve`` with the given settings in a temporary TOML file.

    ``workers`` > 1 adds ``--workers``; ``python`` is the interpreter (and its flags) to run,
    e.g. one with an earlier museforge installed.
    """
    argv = [*python, "-m", "museforge.cli", "serve", "--address", "127.0.0.1:0"]
    return ServerProcess(argv + (["--workers", str(workers)] if workers > 1 else []),
                         MUSEFORGE_BANNER, config=settings.toml())


def naive_server(model_path: Path, name: str) -> ServerProcess:
    return ServerProcess(
        [sys.executable, "-m", "bench.naive_server", "--model", str(model_path), "--name", name,
         "--port", "0"],
        NAIVE_BANNER,
    )


def wait_serving(server: ServerProcess, timeout_s: float = 30.0) -> float:
    """Poll grpc.health.v1 Check until SERVING; seconds from spawn to that answer."""
    deadline = time.perf_counter() + timeout_s
    with grpc.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.perf_counter() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.perf_counter() - server.spawned
            except grpc.RpcError:
                pass
            time.sleep(0.005)
    raise RuntimeError(f"server at {server.address} never reported SERVING")


@dataclass(frozen=True)
class ServerCounters:
    """A model's cumulative statistics from OIP ModelStatistics (Triton's definitions)."""

    requests: int = 0
    executions: int = 0  # session runs
    items: int = 0  # batch items executed
    queue_ns: int = 0  # summed over requests
    infer_ns: int = 0  # summed over executions (each session run once)

    def since(self, before: ServerCounters) -> dict[str, float]:
        """Per-row figures: mean executed batch, queue wait per request, run time per execution."""
        runs = self.executions - before.executions
        requests = self.requests - before.requests
        return {
            "executions": runs,
            "exec_batch": (self.items - before.items) / runs if runs else 0.0,
            "queue_ms": (self.queue_ns - before.queue_ns) / requests / 1e6 if requests else 0.0,
            "run_ms": (self.infer_ns - before.infer_ns) / runs / 1e6 if runs else 0.0,
        }


def server_counters(address: str, model: str) -> ServerCounters:
    from museforge.inference import grpc_service_pb2 as pb
    from museforge.inference import grpc_service_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelStatistics(
            pb.ModelStatisticsRequest(name=model), timeout=10)
    if not reply.model_stats:
        return ServerCounters()
    s = reply.model_stats[0]
    return ServerCounters(
        requests=s.inference_stats.success.count,
        executions=s.execution_count,
        items=s.inference_count,
        queue_ns=s.inference_stats.queue.ns,
        infer_ns=sum(b.compute_infer.ns for b in s.batch_stats),
    )

"""``museforge serve --workers N``: N server processes on one port, seen by clients as one server.

One Python process serves gRPC on one event loop, under one interpreter lock; on a machine
with many cores that lock, not the cores, bounds how many small calls it answers. With
``--workers N`` the parent process starts N workers, each a whole server with its own
models, and the kernel spreads incoming connections over them (``SO_REUSEPORT``; the HTTP
gateway's port likewise). What a client sees stays that of one server:

- health: every worker answers SERVING once all are up (the banner waits for all), and
  NOT_SERVING while they drain;
- jobs: the leader (worker 0) alone runs the job executor; the others record submitted
  jobs and cancel requests in the shared store, where the leader finds them
  (:mod:`museforge.jobs.worker_jobs`);
- metrics: the parent serves the one ``/metrics`` endpoint, the sum over the workers
  (:mod:`museforge.server.worker_metrics`);
- shutdown: SIGTERM (or Ctrl-C) to the parent drains every worker within the grace time;
  the parent exits 0 once they all did. A worker that dies stops the others (exit 1), so
  a supervisor restarts the whole server rather than a partial one.

A connection stays with the worker that accepted it: one client on one channel talks to
one worker, and its calls batch there.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, TypeVar

from ..ascii_numbers import ascii_number
from ..config import Settings, port_problem
from .logs import announce, banner, models_said
from .stop_signals import STOP_SIGNALS, StartupStopped, StopRequest, how_it_ended

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

log = logging.getLogger("museforge.workers")
T = TypeVar("T")

PR_SET_PDEATHSIG = 1
STOP_MARGIN_SECONDS = 15.0  # past the grace time, a worker that has not exited is killed


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    number = ascii_number(port, 6)
    if not sep or number is None:
        raise ValueError(f"address must be HOST:PORT, got {address!r}")
    problem = port_problem(address, lowest=0)
    if problem:
        raise ValueError(problem)
    return host.strip("[]") or "127.0.0.1", number


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class WorkerRole:
    """Which of the workers this process is; worker 0 leads (it runs the job executor)."""

    index: int
    count: int

    @property
    def leader(self) -> bool:
        return self.index == 0


@dataclass(frozen=True)
class Ready:
    """A worker's report once it serves."""

    pid: int
    metrics_address: str
    generators: int
    models_ready: int
    models_failed: int


@dataclass(frozen=True)
class Failed:
    """A worker's report when it could not start: the message its lone server would print."""

    kind: str  # "usage", "import" or "os"
    message: str


class ListenerError(OSError):
    """A listener beside the gRPC port (the HTTP gateway, metrics) that could not start; the
    message names it and its address."""


def listening(what: str, address: str, start: Callable[[], T]) -> T:
    """``start()``, its OSError (a taken port) a ListenerError naming ``what`` and ``address``, so
    that it is not blamed on the gRPC address."""
    try:
        return start()
    except OSError as exc:
        raise ListenerError(f"could not serve {what} on {address}: {exc}") from exc


def reserve_port(host: str, port: int) -> socket.socket:
    """Hold ``host:port`` for the workers (port 0: pick one) until they listen on it.

    The socket is bound with ``SO_REUSEPORT`` but never listens, so it takes no
    connections. A port already taken fails here, as it does for a lone server.
    """
    from .bind_rules import check_free

    check_free(host, port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, port))
    except BaseException:
        holder.close()
        raise
    return holder


# -- a worker ------------------------------------------------------------------------------


def worker_main(data: dict[str, Any], role: WorkerRole, report: Connection) -> None:
    """A worker process: serve until SIGTERM, then drain (the parent handles Ctrl-C)."""
    from .logs import configure

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's signals: it drains us with SIGTERM
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _die_with_parent()
    settings = Settings.model_validate(data)
    configure(settings.log_level, settings.log_format)
    sys.exit(asyncio.run(_serve(settings, role, report)))


def _die_with_parent() -> None:
    """Linux: SIGTERM (a drain) when the parent dies, even by SIGKILL: no orphan keeps the port."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's stop() is the only way down
        return
    if os.getppid() == 1:  # the parent died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


async def _serve(settings: Settings, role: WorkerRole, report: Connection) -> int:
    from .app import start_server
    from .blas_threads import limit_blas_threads
    from .unsafe_setup import UnsafeSetup

    limit_blas_threads(settings.blas_threads)
    try:
        running = await start_server(settings, worker=role)
    except UnsafeSetup as exc:
        report.send(Failed("usage", str(exc)))
        return 2
    except ImportError as exc:
        report.send(Failed("import", str(exc)))
        return 2
    except OSError as exc:
        report.send(Failed("os", str(exc)))
        return 1
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if role.leader:
        for record in running.engine.host.failed():
            log.error("plugin %s failed: %s", record.name, record.error)
    ready = sum(m.ready for m in running.engine.runtime.models.values())
    report.send(Ready(os.getpid(), running.metrics_address, len(running.engine.generators), ready,
                      len(running.engine.runtime.models) - ready))
    await stop.wait()
    await running.stop(settings.grace_seconds)
    return 0


# -- the parent ----------------------------------------------------------------------------


class WorkerFailed(Exception):
    """A worker could not start; ``kind`` and the message are what it reported."""

    def __init__(self, failed: Failed) -> None:
        super().__init__(failed.message)
        self.kind = failed.kind


@dataclass
class Workers:
    """The parent's view: the worker processes and their report pipes."""

    settings: Settings
    count: int
    processes: list[BaseProcess] = field(default_factory=list)
    pipes: list[Connection] = field(default_factory=list)
    ready: list[Ready] = field(default_factory=list)

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")  # no fork: grpc and ONNX Runtime hold threads
        data = self.settings.model_dump()
        for index in range(self.count):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=worker_main, args=(data, WorkerRole(index, self.count), send),
                                      name=f"museforge-worker-{index}")
            process.start()
            send.close()
            self.processes.append(process)
            self.pipes.append(receive)

    def wait_ready(self, stopping: StopRequest | None = None) -> None:
        """Until every worker reports Ready; WorkerFailed (or OSError) if one fails or dies,
        StartupStopped once ``stopping`` is set."""
        waiting = dict(zip(self.pipes, self.processes, strict=True))
        reports: dict[int, Ready] = {}
        while waiting:
            if stopping is not None and stopping.is_set():
                raise StartupStopped(stopping.name)
            for ended in wait([*waiting, *(p.sentinel for p in waiting.values())], timeout=0.2):
                pipe = next((r for r, p in waiting.items() if ended in (r, p.sentinel)), None)
                if pipe is None:
                    continue
                process = waiting.pop(pipe)
                try:
                    message = pipe.recv()
                except EOFError:
                    process.join(5)  # reaped, so that its exit code is known
                    raise OSError(f"worker {process.name} {how_it_ended(process.pid, process.exitcode)} "
                                  "before it served") from None
                if isinstance(message, Failed):
                    raise WorkerFailed(message)
                reports[self.processes.index(process)] = message
        self.ready = [reports[i] for i in range(self.count)]

    def wait_any_exit(self, stopping: threading.Event) -> BaseProcess | None:
        """Block until a worker exits (returned, reaped: its exit code is known) or ``stopping``
        is set (None)."""
        while not stopping.is_set():
            ended = wait([p.sentinel for p in self.processes], timeout=0.2)
            if ended:
                died = next(p for p in self.processes if p.sentinel in ended)
                died.join(5)  # the sentinel says it ended; its exit code is set once it is reaped
                return died
        return None

    def stop(self) -> int:
        """SIGTERM to every worker, wait for them to drain; 0 when all exited 0."""
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        limit = self.settings.grace_seconds + STOP_MARGIN_SECONDS
        for process in self.processes:
            process.join(limit)
            if process.is_alive():
                log.error("worker %s did not stop within %.0f s; killed", process.name, limit)
                process.kill()
                process.join()
        return 0 if all(p.exitcode == 0 for p in self.processes) else 1


def _reserve(settings: Settings) -> tuple[list[socket.socket], dict[str, Any]]:
    """Hold the gRPC (and HTTP) ports; the settings the workers get (resolved ports, private metrics)."""
    from .bind_rules import check_exposure

    holders: list[socket.socket] = []
    changes: dict[str, Any] = {}
    try:
        for key in ("address", "http_address"):
            address = getattr(settings, key)
            if not address:
                continue
            host, port = split_address(address)
            check_exposure(settings, host)
            if key == "address":
                holders.append(reserve_port(host, port))
            else:
                holders.append(listening("the HTTP gateway", address, partial(reserve_port, host, port)))
            changes[key] = join_address(host, holders[-1].getsockname()[1])
    except BaseException:
        for holder in holders:
            holder.close()
        raise
    if settings.metrics_address:
        changes["metrics_address"] = "127.0.0.1:0"  # each worker's own; the parent serves the sum
    return holders, changes


def worker_threads(settings: Settings, count: int) -> dict[str, int]:
    """ONNX Runtime threads per worker when left to us (0): the cores shared out, at least one.

    ONNX Runtime's own default is a thread per core in every process; N workers would run
    N times as many threads as cores, and tiny batches pay for waking them. Measured on 2
    cores with 2 workers: 0.65-0.7 ms of server CPU per tiny call with one thread each,
    0.95-1.1 ms with ONNX Runtime's default (docs/performance.md).
    """
    if settings.intra_op_threads:
        return {}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {"intra_op_threads": max(1, cores // count)}


def _started(workers: Workers, holders: list[socket.socket], stopping: StopRequest) -> None:
    """Start the workers and wait until all serve; on failure stop them and raise as a lone server would."""
    from .unsafe_setup import UnsafeSetup

    try:
        workers.start()
        workers.wait_ready(stopping)
    except BaseException as exc:
        workers.stop()
        if isinstance(exc, WorkerFailed):
            kind = {"usage": UnsafeSetup, "import": ImportError}.get(exc.kind, OSError)
            raise kind(str(exc)) from None
        raise
    finally:
        for holder in holders:  # the workers listen now: the port stays theirs
            holder.close()


def _announce(settings: Settings, workers: Workers, metrics_address: str) -> None:
    """What a lone server prints, plus the workers' pids; the banner last, once signals are handled."""
    first = workers.ready[0]
    pids = ", ".join(str(r.pid) for r in workers.ready)
    fmt = settings.log_format
    announce(fmt, f"{workers.count} workers (pids {pids}); job executor in pid {first.pid}")
    if metrics_address:
        announce(fmt, f"metrics on http://{metrics_address}/metrics")
    if settings.http_address:
        scheme = "https" if settings.tls_cert else "http"
        announce(fmt, f"HTTP/JSON gateway on {scheme}://{workers.settings.http_address} "
                 "(OpenAPI at /openapi.json)")
    banner(f"museforge serving on {workers.settings.address} "
           f"({first.generators} generators, {models_said(first.models_ready, first.models_failed)})")


def serve_workers(settings: Settings, count: int) -> int:
    """Run ``count`` workers until SIGINT/SIGTERM/SIGHUP, then drain them all; the exit code."""
    from .worker_metrics import MergedMetrics

    holders, changes = _reserve(settings)
    metrics: MergedMetrics | None = None
    metrics_address = ""
    previous: dict[int, Any] = {}
    try:
        if settings.metrics_address:
            # Listening before the workers load their models, as the ports above are held: a taken
            # port is said at once, not after every worker has loaded every model.
            metrics = MergedMetrics()
            metrics_address = listening("metrics", settings.metrics_address,
                                        partial(metrics.serve, settings.metrics_address))
        workers = Workers(settings.model_copy(update={**changes, **worker_threads(settings, count)}), count)
        stopping = StopRequest()
        previous = {sig: signal.signal(sig, stopping.handle) for sig in STOP_SIGNALS}
        _started(workers, holders, stopping)
        try:
            if metrics is not None:
                metrics.scrape_workers([r.metrics_address for r in workers.ready])
            _announce(settings, workers, metrics_address)
            died = workers.wait_any_exit(stopping)
        except BaseException:
            workers.stop()
            raise
        if died is not None:
            log.error("worker %s %s; stopping the others", died.name, how_it_ended(died.pid, died.exitcode))
        else:
            announce(settings.log_format, "draining in-flight calls…")
        code = workers.stop()
        return 1 if died is not None else code
    finally:
        for holder in holders:  # closed already once the workers listen; here too if they never did
            holder.close()
        if metrics is not None:
            metrics.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

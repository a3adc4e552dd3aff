"""Assemble and run the gRPC server: museforge.v1, the Open Inference Protocol, health, reflection."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

import grpc
from google.longrunning import operations_pb2_grpc as ops_grpc
from grpc_health.v1 import _async as health_aio  # the asyncio servicer (health.aio)
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..config import Settings, data_directory, keys_path
from ..engine.catalogue import Engine
from ..engine.deferred_imports import import_in_background
from ..feedback.steering import FeedbackSteerer
from ..feedback.store import DATABASE_NAME, FeedbackStore, StoreError
from ..gateway.calls import InProcess, ServiceRegistry
from ..inference import grpc_service_pb2_grpc as oip_grpc
from ..jobs.chain import FrameLimits
from ..jobs.executor_lease import LONE_POLL_SECONDS, ExecutorLease, LeasedJobs
from ..jobs.paths import Sandbox
from ..jobs.runner import LocalExecutor
from ..jobs.service import JobsBackend, JobsService, OperationsService
from ..jobs.store import JobStore
from ..jobs.worker_jobs import POLL_SECONDS, FollowerJobs
from ..v1 import feedback_pb2_grpc as feedback_grpc
from ..v1 import jobs_pb2_grpc as jobs_grpc
from ..v1 import museforge_pb2_grpc as pb_grpc
from .bind_rules import check_exposure, check_free
from .blas_threads import limit_blas_threads
from .call_pool import CallPool
from .data_files import check_data_dir, open_database
from .feedback_service import FeedbackService
from .guard import Guard, build_guard
from .health_report import (
    FEEDBACK_SERVICE,
    JOBS_SERVICE,
    MUSEFORGE_SERVICE,
    OIP_SERVICE,
    OPERATIONS_SERVICE,
    model_changed,
    plugin_health,
    report_health,
)
from .logs import announce, banner, models_said, quiet_ended_writes
from .metrics import Metrics, Recorder
from .museforge_service import MuseforgeService
from .oip_service import InferenceService
from .reflection_pools import ReflectionPools
from .stop_signals import STOP_SIGNALS, StartupStopped
from .tls import server_credentials
from .tracing import Tracing, build_tracing
from .unsafe_setup import UnsafeSetup
from .workers import WorkerRole, join_address, listening, split_address

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from ..gateway.server import RunningGateway

log = logging.getLogger("museforge.server")

JOBS_DB = "jobs.sqlite3"
FEEDBACK_DB = DATABASE_NAME


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    host: str
    engine: Engine
    health: health_aio.HealthServicer
    pool: CallPool
    jobs: JobsBackend
    metrics: Metrics | None = None
    metrics_address: str = ""
    tracing: Tracing | None = None
    gateway: RunningGateway | None = None
    feedback: FeedbackService | None = None

    @property
    def address(self) -> str:
        """HOST:PORT as a client dials it ([::1]:50051 for an IPv6 host)."""
        return join_address(self.host, self.port)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let in-flight ones finish within ``grace`` seconds, then exit."""
        await self.health.enter_graceful_shutdown()
        self.jobs.stopping = True  # open watches and waits end now rather than at the grace's end
        # In-flight frames stop at their next tile now, beside the drain rather than after it: an open
        # WatchJob stream lasts the whole grace, and the executor went on rendering meanwhile. The jobs
        # stay RUNNING and resume on the next start (a job submitted during the drain stays QUEUED).
        jobs_stopped = asyncio.create_task(asyncio.to_thread(self.jobs.executor.close))
        if self.gateway is None:
            await self.server.stop(grace)
        else:  # no new HTTP requests; those in flight finish within the same grace as the gRPC calls
            await asyncio.gather(self.server.stop(grace), self.gateway.close(grace))
        await jobs_stopped
        self.jobs.store.close()
        if self.feedback is not None:
            await asyncio.to_thread(self.feedback.close)  # waits for a write in flight to commit
        if self.metrics is not None:
            self.metrics.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.close)  # flushes the queued spans to the collector
        self.pool.shutdown()
        self.engine.close()


def start_jobs(settings: Settings, engine: Engine, worker: WorkerRole | None = None) -> JobsBackend:
    """Open the job store under the data directory and start the local executor (resuming jobs).

    Among several workers only the leader runs the executor; the others record jobs and
    cancel requests in the shared store, where the leader's poller finds them.
    """
    store = open_database("job database", data_directory(settings) / JOBS_DB, JobStore, "the jobs it held")
    sandbox = Sandbox.of(
        settings.job_input_roots,
        settings.job_output_roots,
        protected=(data_directory(settings), keys_path(settings).parent),
    )
    limits = FrameLimits(settings.generator_timeout_seconds, settings.max_message_bytes)
    if worker is not None and not worker.leader:  # the executors' names are the setting's values
        follower = FollowerJobs(store, settings.job_executor)
        return JobsBackend(store, cast(LocalExecutor, follower), engine, sandbox, settings.max_job_items)

    def start_executor() -> LocalExecutor:  # once this server holds the database's executor lease
        if settings.job_executor == "ray":
            from ..jobs.ray_executor import RayExecutor  # only now: Ray is an optional extra

            ray = RayExecutor(store, engine, sandbox, settings.ray_workers, limits, settings=settings)
            ray.start()
            return ray
        return LocalExecutor(store, engine, sandbox, settings.job_workers, limits).start()

    poll = POLL_SECONDS if worker is not None else LONE_POLL_SECONDS
    may_run = bool(settings.job_input_roots and settings.job_output_roots)  # else every frame would fail
    leased = LeasedJobs(store, ExecutorLease(store.path), start_executor, settings.job_executor,
                        poll).start(may_run)
    return JobsBackend(store, cast(LocalExecutor, leased), engine, sandbox, settings.max_job_items)


def checked_addresses(settings: Settings) -> tuple[tuple[str, int], tuple[str, int]]:
    """The gRPC and HTTP (("", 0): off) hosts and ports, each refused if it would be exposed unsafely."""
    host, port = split_address(settings.address)
    check_exposure(settings, host)
    http_host, http_port = split_address(settings.http_address) if settings.http_address else ("", 0)
    if settings.http_address:
        check_exposure(settings, http_host, "the HTTP gateway (http_address)")
    return (host, port), (http_host, http_port)


def refuse_taken_ports(settings: Settings, grpc_port: tuple[str, int], http_port: tuple[str, int]) -> None:
    """Each port taken by another program refused before the models load, naming its listener."""
    try:
        check_free(*grpc_port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise OSError(f"{exc.strerror} (is another server on that port?)") from exc
    if settings.http_address:
        listening("the HTTP gateway", settings.http_address, partial(check_free, *http_port))
    if settings.metrics_address:
        metrics_port = split_address(settings.metrics_address)
        listening("metrics", settings.metrics_address, partial(check_free, *metrics_port))


def interceptor_chain(guard: Guard, metrics: Metrics | None, tracing: Tracing | None
                      ) -> list[grpc.aio.ServerInterceptor]:
    interceptors: list[grpc.aio.ServerInterceptor] = (
        [guard] if metrics is None else [Recorder(metrics), guard]
    )
    if tracing is not None:  # outermost: refused calls get their span too
        interceptors.insert(0, tracing.interceptor)
    return interceptors


def grpc_server(settings: Settings, interceptors: list[grpc.aio.ServerInterceptor],
                worker: WorkerRole | None) -> grpc.aio.Server:
    return grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            # Only workers share a port; a lone server must fail on a port already taken.
            ("grpc.so_reuseport", 1 if worker is not None else 0),
        ],
    )


def start_feedback(settings: Settings, engine: Engine) -> FeedbackService:
    """The feedback service on its store, a database of its own beside the job store."""
    path = data_directory(settings) / FEEDBACK_DB
    store = open_database("feedback database", path, FeedbackStore, "the feedback events it kept")
    try:
        max_bytes = store.cap_size(settings.feedback_max_bytes)
    except StoreError as exc:
        store.close()
        raise UnsafeSetup(f"cannot cap the feedback database {path}: {exc}") from exc
    engine.steerer = FeedbackSteerer(store)  # `preference` on a generator reads the same store
    return FeedbackService(store, engine, settings.feedback_max_events_per_key, max_bytes,
                           settings.recommend_refit_seconds, settings.recommend_looks_seconds)


def add_services(server: grpc.aio.Server, engine: Engine, pool: CallPool, jobs: JobsBackend,
                 feedback: FeedbackService, workers: int = 1
                 ) -> tuple[ServiceRegistry, health_aio.HealthServicer]:
    """Every servicer, in a registry the gateway calls in-process too; health; reflection."""
    services = ServiceRegistry(server)
    pb_grpc.add_MuseforgeServicer_to_server(MuseforgeService(engine, pool), services)
    oip = InferenceService(engine, pool.executor)
    oip.workers = workers
    oip_grpc.add_GRPCInferenceServiceServicer_to_server(oip, services)
    jobs_grpc.add_JobsServicer_to_server(JobsService(jobs), services)
    ops_grpc.add_OperationsServicer_to_server(OperationsService(jobs), services)
    feedback_grpc.add_FeedbackServicer_to_server(feedback, services)
    health_servicer = health_aio.HealthServicer()
    oip.on_change = partial(model_changed, health_servicer, engine, pool)
    pool.on_held = partial(plugin_health, health_servicer, engine)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, services)
    reflection.enable_server_reflection(
        (
            MUSEFORGE_SERVICE,
            OIP_SERVICE,
            JOBS_SERVICE,
            OPERATIONS_SERVICE,
            FEEDBACK_SERVICE,
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
        ),
        server,
        pool=ReflectionPools(),  # type: ignore[arg-type]  # duck-typed: the lookups reflection makes
    )
    return services, health_servicer


def bind(server: grpc.aio.Server, settings: Settings, host: str, port: int,
         credentials: grpc.ServerCredentials | None) -> int:
    """The port bound (with TLS when there are credentials); OSError when it cannot be."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_secure_port(target, credentials) if credentials else server.add_insecure_port(target)
    if bound == 0:
        raise OSError(f"could not bind {settings.address}")
    return bound


def bind_http(settings: Settings, host: str, port: int, calls: InProcess, guard: Guard,
              worker: WorkerRole | None) -> RunningGateway:
    """The HTTP gateway, bound before the gRPC server starts: a taken port stops it all."""
    from ..gateway.server import (
        bind_gateway,  # only now: serving without it never loads the HTTP stack
    )

    return listening("the HTTP gateway", settings.http_address,
                     partial(bind_gateway, settings, host, port, calls, guard.ring, guard.budget,
                             reuse_port=worker is not None))


async def start_server(
    settings: Settings, engine: Engine | None = None, *, span_exporter: SpanExporter | None = None,
    worker: WorkerRole | None = None,
) -> RunningServer:
    """Start serving on ``settings.address`` (port 0 picks a free one) and return at once.

    ``span_exporter`` turns tracing on with that exporter (tests read spans from memory).
    ``worker``: one of several processes sharing the port (see :mod:`museforge.server.workers`).
    """
    (host, port), (http_host, http_port) = checked_addresses(settings)
    check_data_dir(settings)  # before the models load: a data_dir that is a file is said at once
    if worker is None:  # a worker's ports are held for it by its parent
        refuse_taken_ports(settings, (host, port), (http_host, http_port))
    guard = build_guard(settings)
    credentials = server_credentials(settings)
    tracing = build_tracing(settings, span_exporter)  # before the engine: a missing extra fails fast
    made_engine = engine is None
    engine = engine or Engine(settings)
    try:
        engine.start()
    except BaseException:  # a stop signal while models load (StartupStopped): none stays loaded
        if made_engine:
            engine.close()
        raise
    quiet_ended_writes()
    pool = CallPool(settings.worker_threads)
    metrics = (Metrics(engine.runtime, lambda name: name in engine.generators or name in engine.effects)
               if settings.metrics_address else None)
    interceptors = interceptor_chain(guard, metrics, tracing)
    server = grpc_server(settings, interceptors, worker)
    opened = Opened(server, pool, engine if made_engine else None, tracing, metrics)
    try:
        # Before the jobs: a feedback database that cannot be used stops the start before
        # any job is resumed.
        feedback = opened.feedback = start_feedback(settings, engine)
        jobs = opened.jobs = start_jobs(settings, engine, worker)
        services, health_servicer = add_services(server, engine, pool, jobs, feedback,
                                                 worker.count if worker is not None else 1)
        bound = bind(server, settings, host, port, credentials)
        gateway = None
        if settings.http_address:
            calls = InProcess(services, interceptors, settings.max_message_bytes)
            gateway = opened.gateway = bind_http(settings, http_host, http_port, calls, guard, worker)
        await server.start()
        await report_health(engine, health_servicer)
        import_in_background()  # scipy and the like, now that health answers
        metrics_address = "" if metrics is None else listening(
            "metrics", settings.metrics_address, partial(metrics.serve, settings.metrics_address))
        if gateway is not None:
            await gateway.start()
    except BaseException:
        await opened.close()
        raise
    return RunningServer(
        server, bound, host, engine, health_servicer, pool, jobs, metrics, metrics_address, tracing,
        gateway=gateway, feedback=feedback,
    )


@dataclass
class Opened:
    """What start_server opened so far, closed again if the start fails part way.

    A start that fails leaves no job executor running, no store open and no port bound.
    The engine is closed only when start_server made it (a caller's engine is the caller's).
    """

    server: grpc.aio.Server
    pool: CallPool
    engine: Engine | None
    tracing: Tracing | None
    metrics: Metrics | None
    feedback: FeedbackService | None = None
    jobs: JobsBackend | None = None
    gateway: RunningGateway | None = None

    async def close(self) -> None:
        if self.gateway is not None:
            await self.gateway.close(0)
        await self.server.stop(None)  # harmless on a server that never started
        if self.jobs is not None:
            await asyncio.to_thread(self.jobs.executor.close)
            self.jobs.store.close()
        if self.feedback is not None:
            await asyncio.to_thread(self.feedback.close)
        if self.metrics is not None:
            self.metrics.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.close)
        self.pool.shutdown()
        if self.engine is not None:
            self.engine.close()


async def serve_forever(settings: Settings, engine: Engine | None = None) -> None:
    """Serve until SIGINT/SIGTERM/SIGHUP, then drain within ``settings.grace_seconds``."""
    limit_blas_threads(settings.blas_threads)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    running: RunningServer | None = None
    try:  # `museforge serve` turns a stop signal before these handlers into StartupStopped
        running = await start_server(settings, engine)
        for sig in STOP_SIGNALS:
            try:
                loop.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # pragma: no cover - Windows
                signal.signal(sig, lambda *_: stop.set())
    except StartupStopped:
        if running is not None:  # the signal came as the handlers were being replaced
            await running.stop(0)
        raise
    for record in running.engine.host.failed():
        log.error("plugin %s failed: %s", record.name, record.error)
    # The banner comes last: whoever waits for it can rely on signals being handled.
    ready = sum(m.ready for m in running.engine.runtime.models.values())
    failed = len(running.engine.runtime.models) - ready
    banner(f"museforge serving on {running.address} "
           f"({len(running.engine.generators)} generators, {models_said(ready, failed)})")
    if running.metrics_address:
        announce(settings.log_format, f"metrics on http://{running.metrics_address}/metrics")
    if running.gateway is not None:
        scheme = "https" if settings.tls_cert else "http"
        announce(settings.log_format, f"HTTP/JSON gateway on {scheme}://{running.gateway.address} "
                 "(OpenAPI at /openapi.json)")
    await stop.wait()
    announce(settings.log_format, "draining in-flight calls…")
    await running.stop(settings.grace_seconds)

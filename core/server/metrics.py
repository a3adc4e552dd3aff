"""Prometheus metrics: calls by RPC, generator and status, latency, and Triton's per-model figures.

Served over HTTP on ``metrics_address`` (off by default). The per-model figures carry
Triton's metric names (``nv_inference_*``), read from each model's statistics at
scrape time, so existing Triton dashboards show museforge's models as they are.
Where CUDA is present and NVML (``nvidia-ml-py``) importable, GPU memory is reported as
Triton does (``nv_gpu_memory_used_bytes`` / ``nv_gpu_memory_total_bytes`` by ``gpu_uuid``);
elsewhere those series are simply absent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.registry import Collector

from ..runtime.providers import cuda_driver_present
from ..runtime.sessions import Runtime
from .interception import WrappingInterceptor, around

log = logging.getLogger("museforge.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
STAGES = (
    ("queue", "nv_inference_queue_duration_us"),
    ("compute_input", "nv_inference_compute_input_duration_us"),
    ("compute_infer", "nv_inference_compute_infer_duration_us"),
    ("compute_output", "nv_inference_compute_output_duration_us"),
)


class ModelCollector(Collector):
    """Triton's per-model counters, from the runtime's statistics at each scrape.

    Exposed untyped, so the names are exactly Triton's (a typed counter would gain a
    ``_total`` suffix that Triton dashboards do not query).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "version"]
        families = {
            "success": UnknownMetricFamily(
                "nv_inference_request_success", "Successful requests", labels=labels
            ),
            "failure": UnknownMetricFamily("nv_inference_request_failure", "Failed requests", labels=labels),
            "count": UnknownMetricFamily("nv_inference_count", "Batch items computed", labels=labels),
            "exec": UnknownMetricFamily("nv_inference_exec_count", "Session runs", labels=labels),
            "duration": UnknownMetricFamily(
                "nv_inference_request_duration_us", "Cumulative request time, microseconds", labels=labels
            ),
        }
        stages = {
            stage: UnknownMetricFamily(name, f"Cumulative {stage} time, microseconds", labels=labels)
            for stage, name in STAGES
        }
        by_batch = UnknownMetricFamily(
            "museforge_model_executions", "Session runs by batch size", labels=[*labels, "batch_size"]
        )
        ready = GaugeMetricFamily(
            "museforge_model_ready", "1 when the model is loaded and warmed up", labels=[*labels, "provider"]
        )
        for model in self.runtime.every_version():
            key = [model.name, str(model.version)]
            ready.add_metric([*key, model.provider or "none"], 1.0 if model.ready else 0.0)
            s = model.stats.snapshot()
            families["success"].add_metric(key, s.success.count)
            families["failure"].add_metric(key, s.fail.count)
            families["count"].add_metric(key, s.inference_count)
            families["exec"].add_metric(key, s.execution_count)
            families["duration"].add_metric(key, (s.success.ns + s.fail.ns) / 1000)
            for stage, _ in STAGES:
                stages[stage].add_metric(key, getattr(s, stage).ns / 1000)
            for size, figures in sorted(s.batches.items()):
                by_batch.add_metric([*key, str(size)], figures.compute_infer.count)
        yield from families.values()
        yield from stages.values()
        yield by_batch
        yield ready


GpuReading = tuple[str, int, int]  # (gpu uuid, used bytes, total bytes)


@functools.cache
def nvml() -> Any:
    """The ``pynvml`` module, initialised once on first use; None when there is no GPU to read."""
    if not cuda_driver_present():
        return None
    try:
        import pynvml
    except ImportError:
        log.info("GPU memory is not reported: nvidia-ml-py is not installed")
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        log.info("GPU memory is not reported: NVML did not start (%s)", exc)
        return None
    return pynvml


def read_gpu_memory() -> list[GpuReading]:
    """Every GPU NVML sees (a container's own, there), or none; a device that fails to answer is left out."""
    lib = nvml()
    if lib is None:
        return []
    readings: list[GpuReading] = []
    try:
        count = lib.nvmlDeviceGetCount()
    except lib.NVMLError:
        return []
    for index in range(count):
        try:
            handle = lib.nvmlDeviceGetHandleByIndex(index)
            uuid = lib.nvmlDeviceGetUUID(handle)
            memory = lib.nvmlDeviceGetMemoryInfo(handle)
        except lib.NVMLError:
            continue
        name = uuid.decode() if isinstance(uuid, bytes) else str(uuid)  # bytes from older nvidia-ml-py
        readings.append((name, int(memory.used), int(memory.total)))
    return readings


def gpu_memory_families(readings: list[GpuReading]) -> list[Metric]:
    """Triton's GPU memory gauges for these readings; no readings, no families (not even empty ones)."""
    if not readings:
        return []
    used = GaugeMetricFamily("nv_gpu_memory_used_bytes", "GPU used memory, in bytes", labels=["gpu_uuid"])
    total = GaugeMetricFamily("nv_gpu_memory_total_bytes", "GPU total memory, in bytes", labels=["gpu_uuid"])
    for uuid, used_bytes, total_bytes in readings:
        used.add_metric([uuid], used_bytes)
        total.add_metric([uuid], total_bytes)
    return [used, total]


class GpuMemoryCollector(Collector):
    """GPU memory at each scrape, read through NVML."""

    def __init__(self, read: Callable[[], list[GpuReading]] = read_gpu_memory) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        yield from gpu_memory_families(self.read())


class Endpoint:
    """A Prometheus ``/metrics`` HTTP endpoint over ``self.registry`` (one server's, or the workers' sum)."""

    registry: CollectorRegistry
    _http: Any = None

    def serve(self, address: str) -> str:
        """Start the HTTP endpoint (``/metrics``); returns the address it listens on."""
        host, _, port = address.rpartition(":")
        server, _ = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=self.registry)
        self._http = server
        bound_host, bound_port = server.server_address[:2]
        return f"{bound_host!s}:{bound_port}"

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


def split_method(method: str) -> tuple[str, str]:
    """'/package.Service/Method' -> ('package.Service', 'Method')."""
    parts = method.split("/")
    return (parts[1], parts[2]) if len(parts) >= 3 else (method, "")


class Metrics(Endpoint):
    """One server's metrics, in a registry of its own (several servers may share a process)."""

    def __init__(self, runtime: Runtime, known: Callable[[str], bool] = lambda name: True) -> None:
        self.known = known  # only catalogued names become label values: callers cannot mint series
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "museforge_requests",
            "Calls by service, method and status code",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "museforge_request_duration_seconds",
            "Call latency",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "museforge_requests_in_flight", "Calls being served", ["service"], registry=self.registry
        )
        self.generations = Counter(
            "museforge_generator_requests",
            "Generate and ApplyEffect calls by generator or effect and status code",
            ["generator", "code"],
            registry=self.registry,
        )
        self.registry.register(ModelCollector(runtime))
        self.registry.register(GpuMemoryCollector())

    def observe(self, method: str, code: str, seconds: float, generator: str = "") -> None:
        service, name = split_method(method)
        self.requests.labels(service, name, code).inc()
        self.latency.labels(service, name).observe(seconds)
        if generator and code not in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            self.generations.labels(generator if self.known(generator) else "unknown", code).inc()


class Recorder(WrappingInterceptor):
    """Times every call and records its status code (refusals too); only tracing wraps it."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def wrap(self, handler: grpc.RpcMethodHandler, method: str,
             details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        metrics = self.metrics
        service, _ = split_method(method)

        async def start(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> float:
            metrics.in_flight.labels(service).inc()
            return time.perf_counter()

        def finish(
            request: Any,
            context: grpc.aio.ServicerContext[Any, Any],
            started: float,
            error: BaseException | None,
        ) -> None:
            metrics.in_flight.labels(service).dec()
            metrics.observe(
                method,
                status_name(context, error),
                time.perf_counter() - started,
                getattr(request, "generator", "") or getattr(request, "effect", ""),
            )

        return around(handler, start, finish)


def status_name(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> str:
    """The call's status code name: what it was aborted or set with, else OK / CANCELLED / UNKNOWN."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int) and code != 0:
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    if error is None:
        return "OK"
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):  # the client went away, or time ran out
        remaining = context.time_remaining()
        return "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
    return "UNKNOWN"

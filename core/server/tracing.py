"""OpenTelemetry tracing of gRPC calls (the ``otel`` extra): one SERVER span per call.

Off by default. ``tracing = "otlp"`` exports to an OTLP/gRPC collector, ``"console"``
prints each span. A caller's W3C ``traceparent`` / ``tracestate`` metadata is honoured,
so its trace continues through the server. Nothing here imports opentelemetry until
tracing is built: serving without it never loads the package.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import grpc

from .. import __version__
from ..config import ConfigError, Settings
from .interception import WrappingInterceptor, around
from .metrics import split_method, status_name

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("museforge.tracing")

SERVICE_NAME = "museforge"
SCOPE = "museforge.server"


def missing_extra(mode: str) -> str:
    return f"tracing = \"{mode}\" needs the otel extra: pip install 'museforge[otel]'"


class Tracing:
    """A tracer provider of this server's own (not the process-global one) and its interceptor."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.interceptor = SpanRecorder(provider.get_tracer(SCOPE, __version__))

    def close(self) -> None:
        """Flush the spans still queued and stop exporting (may wait for the collector)."""
        self.provider.shutdown()


def build_tracing(settings: Settings, exporter: SpanExporter | None = None) -> Tracing | None:
    """Tracing as ``settings.tracing`` asks, or None when off.

    ``exporter`` replaces the one the setting names (and turns tracing on): spans then go
    to it as each ends, which is what a test or an embedder inspecting spans wants.
    """
    if settings.tracing == "off" and exporter is None:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError as exc:
        raise ConfigError(missing_extra(settings.tracing)) from exc

    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win; "museforge" replaces the SDK's unknown_service.
    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.tracing == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        provider.add_span_processor(BatchSpanProcessor(otlp_exporter(settings)))  # off the call path
    return Tracing(provider)


def otlp_exporter(settings: Settings) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ConfigError(missing_extra(settings.tracing)) from exc
    # No endpoint: the exporter reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, else localhost:4317.
    exporter: SpanExporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint or None)
    log.info("tracing: exporting spans over OTLP to %s", settings.otlp_endpoint or "the OTEL_* endpoint")
    return exporter


def status_code_number(name: str) -> int:
    return int(grpc.StatusCode[name].value[0])


class SpanRecorder(WrappingInterceptor):
    """The outermost interceptor: a SERVER span per call with the RPC semantic-convention attributes."""

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import propagate, trace

        self.tracer = tracer
        self.extract = propagate.extract  # the configured propagators: W3C trace context by default
        self.trace = trace

    def refused(self, method: str, headers: dict[str, list[str]], code: str, message: str) -> None:
        """A span for a call refused before it reached the interceptors (the HTTP gateway's check of
        a key, before the body is read), as the same refusal over gRPC gets one."""
        service, name = split_method(method)
        span = self.tracer.start_span(
            method.lstrip("/"), context=self.extract(headers), kind=self.trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name})
        span.set_attribute("rpc.grpc.status_code", status_code_number(code))
        span.set_status(self.trace.Status(self.trace.StatusCode.ERROR, f"{code}: {message}"))
        span.end()

    def wrap(self, handler: grpc.RpcMethodHandler, method: str,
             details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        tracer, extract, trace = self.tracer, self.extract, self.trace
        service, name = split_method(method)

        async def start(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Span:
            carrier: dict[str, list[str]] = {}
            for key, value in context.invocation_metadata() or ():
                if isinstance(value, str):  # binary (-bin) entries carry no trace context
                    carrier.setdefault(key.lower(), []).append(value)
            attributes: dict[str, str] = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
            for field in ("generator", "effect"):
                value = getattr(request, field, "")
                if value and isinstance(value, str):
                    attributes[f"museforge.{field}"] = value
            return tracer.start_span(
                method.lstrip("/"),
                context=extract(carrier),
                kind=trace.SpanKind.SERVER,
                attributes=attributes,
            )

        def finish(
            request: Any,
            context: grpc.aio.ServicerContext[Any, Any],
            span: Span,
            error: BaseException | None,
        ) -> None:
            code = status_name(context, error)
            span.set_attribute("rpc.grpc.status_code", status_code_number(code))
            if code != "OK":
                message = context.details()
                description = f"{code}: {message}" if message else code
                span.set_status(trace.Status(trace.StatusCode.ERROR, description))
            if error is not None and not isinstance(
                error, (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit)
            ):  # an abort is an answer, not a fault; a crash is worth its traceback
                span.record_exception(error)
            span.end()

        return around(handler, start, finish)

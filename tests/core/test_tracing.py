"""OpenTelemetry tracing of a real server: one SERVER span per call, continuing the caller's trace."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from museforge.client import Client
from museforge.config import ConfigError, Settings, load_settings
from museforge.server.tracing import build_tracing, missing_extra
from tests.servers import ServerThread

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_ID = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"
GENERATE = "museforge.v1.Museforge/Generate"


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[ServerThread, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    with ServerThread(Settings(address="127.0.0.1:0", plugins=["image"]), span_exporter=exporter) as server:
        yield server, exporter


def spans_of(exporter: InMemorySpanExporter, trace_id: int, name: str) -> list[ReadableSpan]:
    """The finished spans of one trace and method (a span ends as its call does, just after the reply)."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            s for s in exporter.get_finished_spans()
            if s.name == name and s.context is not None and s.context.trace_id == trace_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_call_continues_the_callers_trace(traced: tuple[ServerThread, InMemorySpanExporter]) -> None:
    server, exporter = traced
    metadata = (("traceparent", TRACEPARENT), ("tracestate", "studio=frame1001"))
    with Client(server.address, timeout=60) as client:
        reply = client.stub.Generate(
            Client.request("image.digits", {"digit": 3}, seed=1), metadata=metadata, timeout=60
        )
    assert reply.artifacts
    [span] = spans_of(exporter, TRACE_ID, GENERATE)
    assert span.kind == SpanKind.SERVER
    assert span.parent is not None and span.parent.span_id == PARENT_ID and span.parent.is_remote
    assert span.context is not None and span.context.trace_state.get("studio") == "frame1001"
    assert dict(span.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "museforge.v1.Museforge",
        "rpc.method": "Generate",
        "museforge.generator": "image.digits",
        "rpc.grpc.status_code": 0,
    }
    assert span.status.status_code == StatusCode.UNSET
    assert span.resource.attributes["service.name"] == "museforge"


def test_failed_calls_are_error_spans(traced: tuple[ServerThread, InMemorySpanExporter]) -> None:
    server, exporter = traced
    trace_ids = {"image.nothing": TRACE_ID + 1, "image.digits": TRACE_ID + 2}
    with Client(server.address, timeout=60) as client:
        for generator, trace_id in trace_ids.items():
            with pytest.raises(grpc.RpcError):
                client.stub.Generate(
                    Client.request(generator, {"digit": 12}, seed=1),
                    metadata=(("traceparent", f"00-{trace_id:032x}-{PARENT_ID:016x}-01"),),
                    timeout=60,
                )
    for (generator, trace_id), (code, number, message) in zip(
        trace_ids.items(),
        (("NOT_FOUND", 5, "unknown generator 'image.nothing'"), ("INVALID_ARGUMENT", 3, "")),
        strict=True,
    ):
        [span] = spans_of(exporter, trace_id, GENERATE)
        assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == number
        assert span.attributes["museforge.generator"] == generator
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description is not None and span.status.description.startswith(f"{code}: ")
        assert message in span.status.description


def test_streams_and_untraced_callers_get_root_spans(
    traced: tuple[ServerThread, InMemorySpanExporter],
) -> None:
    server, exporter = traced
    exporter.clear()
    with Client(server.address, timeout=60) as client:
        events = list(client.stream_generate("image.digits", {"digit": 4}, seed=2))
    assert events
    deadline = time.monotonic() + 10
    while not (spans := [s for s in exporter.get_finished_spans()
                         if s.name == "museforge.v1.Museforge/StreamGenerate"]):
        assert time.monotonic() < deadline, "no span for StreamGenerate"
        time.sleep(0.05)
    [span] = spans
    assert span.parent is None and span.context is not None and span.context.trace_id not in (0, TRACE_ID)
    assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 0


class Collector(otlp_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver, as a collector (Jaeger, the OpenTelemetry Collector) runs one."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.resources: list[Any] = []
        self.lock = threading.Lock()

    def Export(
        self, request: otlp.ExportTraceServiceRequest, context: Any
    ) -> otlp.ExportTraceServiceResponse:
        with self.lock:
            for resource_spans in request.resource_spans:
                self.resources.append(resource_spans.resource)
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
        return otlp.ExportTraceServiceResponse()


def test_otlp_spans_reach_a_collector_by_shutdown() -> None:
    receiver = Collector()
    collector = grpc.server(futures.ThreadPoolExecutor(2))
    otlp_grpc.add_TraceServiceServicer_to_server(receiver, collector)
    port = collector.add_insecure_port("127.0.0.1:0")
    collector.start()
    try:
        settings = Settings(address="127.0.0.1:0", plugins=["image"], tracing="otlp",
                            otlp_endpoint=f"http://127.0.0.1:{port}")
        with ServerThread(settings) as server, Client(server.address, timeout=60) as client:
            client.generate("image.digits", {"digit": 5}, seed=3)
        # The batch exporter holds spans for seconds; stopping the server flushed them.
        names = [span.name for span in receiver.spans]
        assert GENERATE in names
        service = {kv.key: kv.value.string_value for kv in receiver.resources[0].attributes}["service.name"]
        assert service == "museforge"
    finally:
        collector.stop(0)
    assert build_tracing(Settings()) is None


def test_tracing_settings_come_from_the_environment_and_are_checked() -> None:
    environ = {"MUSEFORGE_TRACING": "console", "MUSEFORGE_OTLP_ENDPOINT": "http://collector:4317"}
    settings = load_settings(environ=environ)
    assert (settings.tracing, settings.otlp_endpoint) == ("console", "http://collector:4317")
    with pytest.raises(ConfigError, match="tracing"):
        load_settings(environ={"MUSEFORGE_TRACING": "jaeger"})


def test_serve_says_how_to_install_the_missing_extra() -> None:
    hide = (
        "import sys; sys.modules['opentelemetry'] = None; from museforge.cli import main; "
        "sys.exit(main(['serve', '--address', '127.0.0.1:0', '--plugins', '', '--tracing', 'otlp']))"
    )
    result = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert missing_extra("otlp") in result.stderr
    assert missing_extra("otlp") == "tracing = \"otlp\" needs the otel extra: pip install 'museforge[otel]'"


def test_serving_without_tracing_never_imports_opentelemetry() -> None:
    serve = (
        "import asyncio, sys\n"
        "from museforge.config import Settings\n"
        "from museforge.server.app import start_server\n"
        "async def main() -> None:\n"
        "    running = await start_server(Settings(address='127.0.0.1:0', plugins=[], metrics_address="
        "'127.0.0.1:0'))\n"
        "    await running.stop(0)\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'opentelemetry'))\n"
    )
    result = subprocess.run([sys.executable, "-c", serve], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"

"""The Prometheus endpoint of a real server: calls by RPC, generator and status; Triton's model figures."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from museforge.client import Client
from museforge.config import Settings
from museforge.plugins.image.digits import MODELS_DIR
from museforge.runtime.providers import cuda_driver_present
from museforge.server.auth import KeyFile
from museforge.server.logs import JsonFormatter
from museforge.server.metrics import GpuMemoryCollector, read_gpu_memory
from tests.models import served_version
from tests.servers import ServerThread


@pytest.fixture(scope="module")
def measured() -> Iterator[ServerThread]:
    settings = Settings(address="127.0.0.1:0", plugins=["image"], metrics_address="127.0.0.1:0")
    with ServerThread(settings) as server:
        yield server


def scrape(server: ServerThread) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert server.running is not None
    with urllib.request.urlopen(f"http://{server.running.metrics_address}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_calls_are_counted_by_method_generator_and_status(measured: ServerThread) -> None:
    before = scrape(measured)
    with Client(measured.address, timeout=60) as client:
        for seed in range(3):
            client.generate("image.digits", {"digit": 2}, seed=seed)
        with pytest.raises(grpc.RpcError):
            client.generate("image.digits", {"digit": 12}, seed=1)
        with pytest.raises(grpc.RpcError):
            client.generate("image.nothing", {}, seed=1)  # an unknown name mints no series of its own
        list(client.stream_generate("image.digits", {"digit": 4}, seed=1))
    after = scrape(measured)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    service = "museforge.v1.Museforge"
    assert grew("museforge_requests_total", service=service, method="Generate", code="OK") == 3
    assert grew("museforge_requests_total", service=service, method="Generate", code="INVALID_ARGUMENT") == 1
    assert grew("museforge_requests_total", service=service, method="Generate", code="NOT_FOUND") == 1
    assert grew("museforge_requests_total", service=service, method="StreamGenerate", code="OK") == 1
    assert grew("museforge_generator_requests_total", generator="image.digits", code="OK") == 4
    assert grew("museforge_generator_requests_total", generator="unknown", code="NOT_FOUND") == 1
    assert not any(dict(labels).get("generator") == "image.nothing" for _, labels in after)
    assert grew("museforge_request_duration_seconds_count", service=service, method="Generate") == 5
    assert value(after, "museforge_requests_in_flight", service=service) == 0


def test_model_figures_carry_tritons_names(measured: ServerThread) -> None:
    with Client(measured.address, timeout=60) as client:
        client.generate("image.digits", {"digit": 1}, seed=9, count=3)
    samples = scrape(measured)
    model = {"model": "image.digits", "version": served_version(MODELS_DIR).name}
    assert value(samples, "nv_inference_request_success", **model) >= 1
    assert value(samples, "nv_inference_count", **model) >= 3
    assert value(samples, "nv_inference_exec_count", **model) >= 1
    for stage in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert (f"nv_inference_{stage}_duration_us", tuple(sorted(model.items()))) in samples
    assert value(samples, "nv_inference_compute_infer_duration_us", **model) > 0
    assert value(samples, "museforge_model_ready", provider="CPUExecutionProvider", **model) == 1
    assert any(name == "museforge_model_executions" for name, _ in samples)


def test_metrics_are_off_unless_asked_for() -> None:
    with ServerThread(Settings(address="127.0.0.1:0", plugins=[])) as server:
        assert server.running is not None and server.running.metrics_address == ""


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord("museforge.test", logging.ERROR, __file__, 1, "frame %d failed", (7,), None)
    entry = json.loads(JsonFormatter().format(record))
    assert (
        entry["level"] == "ERROR"
        and entry["logger"] == "museforge.test"
        and entry["message"] == "frame 7 failed"
    )
    result = subprocess.run(
        [sys.executable, "-m", "museforge.cli", "serve", "--log-format", "yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_gpu_memory_is_reported_only_where_there_is_a_gpu(measured: ServerThread) -> None:
    gpu_series = {name for name, _ in scrape(measured) if name.startswith("nv_gpu_memory")}
    if cuda_driver_present() and read_gpu_memory():
        assert gpu_series == {"nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes"}
    else:  # this machine: no driver, so no series at all (and the scrape still works)
        assert gpu_series == set() and read_gpu_memory() == []


def test_gpu_memory_is_exposed_as_triton_does() -> None:
    readings = [
        ("GPU-5a2e0a3c-9c4b-1f3e-8d2a-6a5b3c2d1e0f", 1_610_612_736, 25_769_803_776),
        ("GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", 0, 85_899_345_920),
    ]
    registry = CollectorRegistry()
    registry.register(GpuMemoryCollector(lambda: readings))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert {name: family.type for name, family in families.items()} == {
        "nv_gpu_memory_used_bytes": "gauge",
        "nv_gpu_memory_total_bytes": "gauge",
    }
    for name, column in (("nv_gpu_memory_used_bytes", 1), ("nv_gpu_memory_total_bytes", 2)):
        assert {s.labels["gpu_uuid"]: s.value for s in families[name].samples} == {
            reading[0]: float(reading[column]) for reading in readings
        }
    empty = CollectorRegistry()
    empty.register(GpuMemoryCollector(lambda: []))
    assert generate_latest(empty) == b""  # not even HELP lines without a GPU


def test_http_calls_refused_for_their_key_are_counted(tmp_path: Path) -> None:
    """The gateway refuses an unknown key before the interceptors (no body read): it was not counted,
    so key guessing over HTTP did not show in the metrics as it does on the gRPC port."""
    keys = tmp_path / "keys.json"
    KeyFile(keys).create("reader", ["read"])
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"],
                        metrics_address="127.0.0.1:0", auth=True, api_keys_file=str(keys))
    with ServerThread(settings) as server:
        assert server.running is not None and server.running.gateway is not None
        for key in ("mf_deadbeef_nope", "", "mf_0000_x"):
            asked = urllib.request.Request(f"http://{server.running.gateway.address}/v1/generators",
                                           headers={"Authorization": f"Bearer {key}"} if key else {})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(asked, timeout=30)
            assert refused.value.code == 401
        counted = value(scrape(server), "museforge_requests_total", code="UNAUTHENTICATED",
                        method="ListGenerators", service="museforge.v1.Museforge")
    assert counted == 3

"""museforge.v1 over a real gRPC server with the built-in plugins and shipped models."""

from __future__ import annotations

import io
import json

import grpc
import jsonschema
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from museforge import __version__
from museforge.client import Client, field_violations
from museforge.engine.codecs.encoders import read_png_provenance
from museforge.plugins.image.digits import MODELS_DIR
from museforge.runtime.manifest import Manifest
from tests.models import served_version


def test_list_plugins_reports_builtin_image_plugin(client: Client) -> None:
    plugins = {p.name: p for p in client.plugins()}
    image = plugins["image"]
    assert image.error == ""
    assert image.source == "entrypoint:museforge"
    assert image.version == __version__
    assert set(image.hooks) == {"register_generators", "register_recipes", "register_encoders"}
    assert "image.digits" in image.generators


def test_list_generators_has_schema_formats_and_provider(client: Client) -> None:
    [info] = [g for g in client.generators() if g.name == "image.digits"]
    assert info.modality == "image"
    assert list(info.formats) == ["png", "png16", "jpeg", "webp", "exr"]
    assert info.available and info.plugin == "image"
    schema = json.loads(info.parameters_schema)
    assert schema["properties"]["digit"]["anyOf"][0] == {
        "maximum": 9, "minimum": 0, "type": "integer"
    }
    [model] = info.models
    manifest = Manifest.read(served_version(MODELS_DIR))
    assert (model.name, model.version) == ("image.digits", str(manifest.version))
    assert model.sha256 == manifest.sha256
    assert model.ready and model.provider == "CPUExecutionProvider"
    assert [g.name for g in client.generators(modality="audio")] == ["music.melody"]
    assert [g.name for g in client.generators(modality="mesh")] == ["mesh.props"]


@pytest.mark.parametrize("listing", ["generators", "effects"])
@pytest.mark.parametrize("modality", ["music", "IMAGE", "bogus"])
def test_a_listing_by_a_modality_there_is_not_is_refused_naming_the_ones_there_are(
        client: Client, listing: str, modality: str) -> None:
    # It listed nothing, with OK: an engine asking for "music" concluded the server had none.
    with pytest.raises(grpc.RpcError) as refused:
        getattr(client, listing)(modality=modality)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, problem)] = field_violations(refused.value)
    assert field == "modality" and "one of image, audio, mesh, video" in problem, problem


def test_generate_returns_requested_count_of_pngs(client: Client) -> None:
    reply = client.generate("image.digits", {"digit": 3}, seed=5, count=4)
    assert reply.seed == 5
    assert [a.index for a in reply.artifacts] == [0, 1, 2, 3]
    for artifact in reply.artifacts:
        assert artifact.media_type == "image/png" and artifact.format == "png"
        image = Image.open(io.BytesIO(artifact.data))
        assert image.size == (28, 28) and image.mode == "L"
        assert artifact.filename == f"image.digits-5-{artifact.index:04d}.png"
        assert artifact.metadata["x.digit"] == "3"


def test_same_seed_gives_identical_bytes_and_other_seed_differs(client: Client) -> None:
    first = client.generate("image.digits", {"digit": 7}, seed=42, count=3)
    again = client.generate("image.digits", {"digit": 7}, seed=42, count=3)
    other = client.generate("image.digits", {"digit": 7}, seed=43, count=3)
    assert [a.data for a in first.artifacts] == [a.data for a in again.artifacts]
    assert first.artifacts[0].data != other.artifacts[0].data


def test_png_carries_provenance(client: Client) -> None:
    reply = client.generate("image.digits", {"digit": 1, "size": 56}, seed=9)
    data = reply.artifacts[0].data
    provenance = read_png_provenance(data)
    assert provenance["generator"] == "image.digits"
    assert provenance["seed"] == "9"
    assert json.loads(provenance["parameters"]) == {"digit": 1, "size": 56}
    assert provenance["museforge_version"] == __version__
    [model] = json.loads(provenance["models"])
    assert model["sha256"] == Manifest.read(served_version(MODELS_DIR)).sha256
    assert Image.open(io.BytesIO(data)).size == (56, 56)


def test_server_picks_and_reports_a_seed_when_none_is_given(client: Client) -> None:
    reply = client.generate("image.digits", {})
    replay = client.generate("image.digits", {}, seed=reply.seed)
    assert reply.artifacts[0].data == replay.artifacts[0].data


def test_random_digit_label_comes_from_the_seed(client: Client) -> None:
    reply = client.generate("image.digits", {"digit": "random"}, seed=11, count=16)
    digits = {a.metadata["x.digit"] for a in reply.artifacts}
    assert len(digits) > 1


@pytest.mark.parametrize(("generator", "field"), [("image.digits", "digit"), ("image.tiles", "look"),
                                                   ("image.icons", "category")])
def test_the_schema_lists_random_where_the_generator_takes_it(client: Client, generator: str,
                                                              field: str) -> None:
    # An engine that checks requests against the schema must accept what the docs tell callers to send.
    schema = client.schema(generator)
    assert {"const": "random", "type": "string"} in schema["properties"][field]["anyOf"]
    jsonschema.validate({field: "random"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({field: "sometimes"}, schema)


def test_stream_generate_sends_seed_progress_then_artifacts(client: Client) -> None:
    events = list(client.stream_generate("image.digits", {"digit": 2}, seed=3, count=40))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "seed" and events[0].seed == 3
    assert kinds.count("artifact") == 40
    progress = [e.progress for e in events if e.WhichOneof("event") == "progress"]
    assert progress[0].completed == 0 and progress[-1].completed == 40
    assert all(p.total == 40 for p in progress)
    # Progress for the first chunk arrives before the artifacts of the second chunk.
    first_done = next(i for i, e in enumerate(events)
                      if e.WhichOneof("event") == "progress" and e.progress.completed == 32)
    assert kinds[first_done + 1:].count("artifact") == 8
    unary = client.generate("image.digits", {"digit": 2}, seed=3, count=40)
    streamed = [e.artifact.data for e in events if e.WhichOneof("event") == "artifact"]
    assert streamed == [a.data for a in unary.artifacts]


def test_generated_pixels_match_the_onnx_model_directly(client: Client) -> None:
    import onnxruntime as ort

    from museforge.plugins.image.digits import sample_inputs

    session = ort.InferenceSession(str(served_version(MODELS_DIR) / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    expected = session.run(["image"], sample_inputs(21, 2, 4))[0][:, 0]
    reply = client.generate("image.digits", {"digit": 4}, seed=21, count=2)
    for artifact, want in zip(reply.artifacts, expected, strict=True):
        got = np.asarray(Image.open(io.BytesIO(artifact.data)), dtype=np.float32) / 255.0
        assert np.max(np.abs(got - np.clip(want, 0, 1))) <= 1 / 255 + 1e-6


def test_health_reports_each_service_plugin_and_model(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    for service in ("", "museforge.v1.Museforge", "inference.GRPCInferenceService",
                    "museforge.v1.Jobs", "google.longrunning.Operations",
                    "museforge.plugin/image", "museforge.model/image.digits", "museforge.plugin/mesh",
                    "museforge.model/mesh.props"):
        assert stub.Check(health_pb2.HealthCheckRequest(service=service)).status == serving


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [reply] = list(stub.ServerReflectionInfo(iter([request])))
    names = {s.name for s in reply.list_services_response.service}
    assert {"museforge.v1.Museforge", "inference.GRPCInferenceService", "museforge.v1.Jobs",
            "google.longrunning.Operations", "grpc.health.v1.Health"} <= names

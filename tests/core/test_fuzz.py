"""Property-based fuzzing of every RPC: malformed and extreme values never crash the server
and never come back INTERNAL (a client's mistake is always the client's status code).

Hypothesis draws names (real and random), parameter structs of any JSON shape and size
of number (NaN and infinities included), counts, seeds, formats, media bytes, OIP tensors
with odd shapes, datatypes and contents, job specs, operation names and feedback events. Every call runs
against one real server (built-in plugins, short limits so a valid-but-heavy draw ends
quickly); afterwards the server must still be healthy and still generate.

Image inputs include structure-aware damage (tests/core/hostile_images.py): PNG at 8 and
16 bits with every row filter (IHDR fields, chunk lengths, filter bytes, deflate bytes,
CRCs, truncation), JPEG (frame sizes, segment lengths, truncation), WebP and OpenEXR
(data windows, flags, truncation). The decoders alone get many more of them: each must
give a Picture or a DecodeError, never another exception, within bounded CPU.
"""

from __future__ import annotations

import io
import resource
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from google.longrunning import operations_pb2
from google.protobuf import duration_pb2, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from museforge.client import Client
from museforge.config import Settings
from museforge.engine.codecs.decoders import DecodeError, decode_image
from museforge.inference import grpc_service_pb2 as oip
from museforge.inference import grpc_service_pb2_grpc as oip_grpc
from museforge.v1 import feedback_pb2 as fb
from museforge.v1 import jobs_pb2
from museforge.v1 import museforge_pb2 as pb
from tests.core.hostile_images import hostile_images
from tests.servers import ServerThread

# A server mistake; everything else (INVALID_ARGUMENT, NOT_FOUND, DEADLINE_EXCEEDED, ...) is handled.
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

GENERATORS = ["image.digits", "image.faces", "image.texture", "image.tiles", "image.icons", "music.melody",
              "mesh.props"]
EFFECTS = ["effect.upscale", "effect.denoise", "effect.restore", "effect.stylize", "effect.interpolate"]
PARAMETER_NAMES = [
    "digit",
    "size",
    "family",
    "width",
    "height",
    "tileable",
    "interpolate_to",
    "frames",
    "style",
    "key",
    "mode",
    "bars",
    "tempo",
    "temperature",
    "resolution",
    "lods",
    "scale",
    "sigma",
    "quality",
    "strength",
    "tile",
    "kind",
    "look",
    "palette",
    "columns",
    "rows",
    "pixel_scale",
    "category",
]
FORMATS = ["png", "png16", "jpeg", "webp", "exr", "ogg", "wav", "mid", "glb", "usdz", "stl"]

numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True))
leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=40))
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
names = st.one_of(st.sampled_from(PARAMETER_NAMES), st.text(max_size=12))
parameters = st.dictionaries(names, json_values, max_size=5)
formats = st.one_of(st.sampled_from(FORMATS), st.text(max_size=8))
seeds = st.one_of(st.none(), st.integers(0, 2**64 - 1))


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    for key, value in values.items():
        try:
            message.update({key: value})
        except (ValueError, TypeError):  # a value Struct itself cannot hold (e.g. an int above 2**63)
            message.update({key: str(value)})
    return message


def png(width: int, height: int, mode: str) -> bytes:
    buffer = io.BytesIO()
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = np.random.default_rng(width * height).integers(0, 256, (height, width, channels), np.uint8)
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


media = st.one_of(
    st.binary(max_size=600),
    st.builds(png, st.integers(1, 40), st.integers(1, 40), st.sampled_from(["L", "RGB", "RGBA"])),
    st.builds(lambda b: b"\x89PNG\r\n\x1a\n" + b, st.binary(max_size=200)),
    st.builds(lambda b: b"\x76\x2f\x31\x01" + b, st.binary(max_size=200)),  # an EXR magic, then noise
    hostile_images,
)


def cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=hostile_images)
def test_decoders_on_damaged_images(data: bytes) -> None:
    start = cpu_seconds()
    try:
        picture = decode_image(data, max_pixels=1 << 20)
    except DecodeError:
        pass
    else:
        assert picture.colour.dtype == np.float32 and picture.width * picture.height <= 1 << 20
    assert cpu_seconds() - start < 2.0


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, grpc.Channel]]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "in").mkdir()
    (root / "out").mkdir()
    limits = Settings(
        address="127.0.0.1:0",
        max_count=4,
        generator_timeout_seconds=3.0,
        max_input_pixels=1_000_000,
        data_dir=str(root / "data"),
        job_input_roots=[str(root / "in")],
        job_output_roots=[str(root / "out")],
    )
    with ServerThread(limits) as server, Client(server.address, timeout=5) as client:
        yield client, client.channel
        health = health_pb2_grpc.HealthStub(client.channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
        assert client.generate("image.digits", {"digit": 4}, seed=1).artifacts  # still working


def handled(call: Callable[[], object]) -> None:
    try:
        result = call()
        if isinstance(result, Iterator):
            for _ in result:
                pass
    except grpc.RpcError as exc:
        assert exc.code() not in FORBIDDEN, f"{exc.code()}: {exc.details()}"


@EXAMPLES
@given(
    generator=st.one_of(st.sampled_from(GENERATORS), st.text(max_size=20)),
    params=parameters,
    count=st.one_of(st.integers(0, 3), st.integers(0, 2**32 - 1)),
    fmt=formats,
    seed=seeds,
    stream=st.booleans(),
)
def test_generate(
    target: tuple[Client, grpc.Channel],
    generator: str,
    params: dict[str, Any],
    count: int,
    fmt: str,
    seed: int | None,
    stream: bool,
) -> None:
    client, _ = target
    request = pb.GenerateRequest(generator=generator, parameters=struct(params), count=count, format=fmt)
    if seed is not None:
        request.seed = seed
    call = client.stub.StreamGenerate if stream else client.stub.Generate
    handled(lambda: call(request, timeout=5))


@EXAMPLES
@given(
    effect=st.one_of(st.sampled_from(EFFECTS), st.text(max_size=20)),
    params=parameters,
    inputs=st.lists(st.tuples(st.text(max_size=30), media), max_size=3),
    fmt=formats,
    seed=seeds,
    stream=st.booleans(),
)
def test_apply_effect(
    target: tuple[Client, grpc.Channel],
    effect: str,
    params: dict[str, Any],
    inputs: list[tuple[str, bytes]],
    fmt: str,
    seed: int | None,
    stream: bool,
) -> None:
    client, _ = target
    request = client.effect_request(effect, inputs, None, seed=seed, fmt=fmt)
    request.parameters.CopyFrom(struct(params))
    call = client.stub.StreamApplyEffect if stream else client.stub.ApplyEffect
    handled(lambda: call(request, timeout=5))


@EXAMPLES
@given(text=st.text(max_size=30))
def test_listings_statistics_and_health(target: tuple[Client, grpc.Channel], text: str) -> None:
    client, _ = target
    handled(lambda: client.stub.ListGenerators(pb.ListGeneratorsRequest(modality=text), timeout=5))
    handled(lambda: client.stub.ListEffects(pb.ListEffectsRequest(modality=text), timeout=5))
    handled(lambda: client.stub.GetModelStatistics(pb.GetModelStatisticsRequest(model=text), timeout=5))
    health = health_pb2_grpc.HealthStub(client.channel)
    handled(lambda: health.Check(health_pb2.HealthCheckRequest(service=text), timeout=5))


DATATYPES = ["BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "BF16"]
tensors = st.fixed_dictionaries(
    {
        "name": st.one_of(
            st.sampled_from(["z", "label", "image", "latent", "family", "sdf"]), st.text(max_size=8)
        ),
        "datatype": st.one_of(st.sampled_from(DATATYPES), st.text(max_size=6)),
        "shape": st.lists(st.one_of(st.integers(-3, 8), st.integers(-(2**63), 2**63 - 1)), max_size=5),
        "fp32": st.lists(st.floats(width=32, allow_nan=True), max_size=20),
        "int64": st.lists(st.integers(-(2**63), 2**63 - 1), max_size=20),
        "raw": st.one_of(st.none(), st.binary(max_size=256)),
    }
)


@EXAMPLES
@given(
    model=st.one_of(
        st.sampled_from(["image.digits", "mesh.props", "effect.upscale_x2"]), st.text(max_size=20)
    ),
    version=st.one_of(st.just(""), st.text(max_size=5)),
    inputs=st.lists(tensors, max_size=3),
    outputs=st.lists(st.text(max_size=8), max_size=2),
)
def test_open_inference_protocol(
    target: tuple[Client, grpc.Channel],
    model: str,
    version: str,
    inputs: list[dict[str, Any]],
    outputs: list[str],
) -> None:
    _, channel = target
    stub = oip_grpc.GRPCInferenceServiceStub(channel)
    request = oip.ModelInferRequest(model_name=model, model_version=version)
    for tensor in inputs:
        added = request.inputs.add(name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"])
        added.contents.fp32_contents.extend(tensor["fp32"])
        added.contents.int64_contents.extend(tensor["int64"])
        if tensor["raw"] is not None:
            request.raw_input_contents.append(tensor["raw"])
    for name in outputs:
        request.outputs.add(name=name)
    handled(lambda: stub.ModelInfer(request, timeout=5))
    for call, message in (
        (stub.ModelMetadata, oip.ModelMetadataRequest(name=model, version=version)),
        (stub.ModelReady, oip.ModelReadyRequest(name=model, version=version)),
        (stub.ModelConfig, oip.ModelConfigRequest(name=model, version=version)),
        (stub.ModelStatistics, oip.ModelStatisticsRequest(name=model, version=version)),
    ):
        handled(lambda call=call, message=message: call(message, timeout=5))  # type: ignore[misc]


paths = st.one_of(
    st.sampled_from(["plates/a.####.png", "../x.#.png", "/etc/passwd", "a.png", "", "#"]),
    st.text(max_size=30),
)


@EXAMPLES
@given(
    steps=st.lists(
        st.tuples(st.one_of(st.sampled_from(EFFECTS), st.text(max_size=12)), parameters), max_size=3
    ),
    pattern=paths,
    first=st.integers(-(2**63), 2**63 - 1),
    last=st.integers(-(2**63), 2**63 - 1),
    small_range=st.booleans(),
    listed=st.lists(paths, max_size=3),
    output=paths,
    fmt=formats,
    key=st.text(max_size=10),
    seed=seeds,
)
def test_submit_job(
    target: tuple[Client, grpc.Channel],
    steps: list[tuple[str, dict[str, Any]]],
    pattern: str,
    first: int,
    last: int,
    small_range: bool,
    listed: list[str],
    output: str,
    fmt: str,
    key: str,
    seed: int | None,
) -> None:
    client, _ = target
    spec = jobs_pb2.JobSpec(output_pattern=output, format=fmt, idempotency_key=key)
    for effect, params in steps:
        spec.steps.add(effect=effect, parameters=struct(params))
    spec.input.pattern = pattern
    spec.input.first_frame = first
    # Mostly huge or reversed ranges; sometimes a short one that really runs (frames are missing).
    spec.input.last_frame = min(first + abs(last) % 5, 2**63 - 1) if small_range else last
    spec.input.paths.extend(listed)
    if seed is not None:
        spec.seed = seed
    handled(lambda: client.jobs.SubmitJob(jobs_pb2.SubmitJobRequest(job=spec), timeout=5))


@EXAMPLES
@given(
    name=st.one_of(st.just("jobs/"), st.text(max_size=30)),
    filter_text=st.text(max_size=30),
    page_size=st.integers(-(2**31), 2**31 - 1),
    token=st.text(max_size=10),
    wait=st.integers(-(2**40), 2**40),
)
def test_operations(
    target: tuple[Client, grpc.Channel], name: str, filter_text: str, page_size: int, token: str, wait: int
) -> None:
    client, _ = target
    ops = client.operations
    handled(lambda: ops.GetOperation(operations_pb2.GetOperationRequest(name=name), timeout=5))
    handled(
        lambda: ops.ListOperations(
            operations_pb2.ListOperationsRequest(
                name="jobs", filter=filter_text, page_size=page_size, page_token=token
            ),
            timeout=5,
        )
    )
    handled(lambda: ops.CancelOperation(operations_pb2.CancelOperationRequest(name=name), timeout=5))
    handled(lambda: ops.DeleteOperation(operations_pb2.DeleteOperationRequest(name=name), timeout=5))
    seconds = max(-315_576_000_000, min(315_576_000_000, wait))
    request = operations_pb2.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(seconds=seconds))
    handled(lambda: ops.WaitOperation(request, timeout=2))
    handled(lambda: client.jobs.WatchJob(jobs_pb2.WatchJobRequest(name=name), timeout=2))


sha256s = st.one_of(st.text("0123456789abcdefABCDEF", min_size=64, max_size=64), st.text(max_size=70))
artifact_refs = st.builds(
    lambda sha, generator, effect, version, seed, params: fb.ArtifactRef(
        sha256=sha, generator=generator, effect=effect, model_version=version, seed=seed,
        parameters=struct(params)),
    sha256s, st.one_of(st.sampled_from(GENERATORS), st.text(max_size=20)),
    st.one_of(st.just(""), st.sampled_from(EFFECTS), st.text(max_size=10)), st.text(max_size=70),
    st.integers(0, 2**64 - 1), parameters,
)


@EXAMPLES
@given(
    kind=st.integers(-3, 8),
    user=st.text(max_size=140),
    artifact=st.one_of(st.none(), artifact_refs),
    thumb=st.integers(-1, 4),
    stars=st.integers(0, 2**32 - 1),
    candidates=st.lists(artifact_refs, max_size=18),
    page_size=st.integers(-(2**31), 2**31 - 1),
    token=st.text(max_size=20),
    all_users=st.booleans(),
)
def test_feedback(
    target: tuple[Client, grpc.Channel], kind: int, user: str, artifact: fb.ArtifactRef | None, thumb: int,
    stars: int, candidates: list[fb.ArtifactRef], page_size: int, token: str, all_users: bool,
) -> None:
    client, _ = target
    event = fb.FeedbackEvent(user=user, kind=kind, thumb=thumb, stars=stars,
                             artifact=artifact, candidates=candidates)
    handled(lambda: client.feedback.RecordFeedback(fb.RecordFeedbackRequest(event=event), timeout=5))
    request = fb.ListFeedbackRequest(user=user, page_size=page_size, page_token=token)
    handled(lambda: client.feedback.ListFeedback(request, timeout=5))
    export = fb.ExportFeedbackRequest(user=user, all_users=all_users)
    handled(lambda: client.feedback.ExportFeedback(export, timeout=5))
    handled(lambda: client.feedback.ForgetUser(fb.ForgetUserRequest(user=user), timeout=5))

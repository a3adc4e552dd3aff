"""The Open Inference Protocol (KServe v2 / Triton) against the shipped image.digits model."""

from __future__ import annotations

import grpc
import numpy as np
import onnxruntime as ort
import pytest

from museforge.client import field_violations
from museforge.config import Settings
from museforge.inference import grpc_service_pb2 as pb
from museforge.inference import grpc_service_pb2_grpc as pb_grpc
from museforge.plugins.image.digits import MODELS_DIR
from tests.models import served_version
from tests.servers import ServerThread

SERVED = served_version(MODELS_DIR)  # the digits version served by default


@pytest.fixture(scope="module")
def oip(channel: grpc.Channel) -> pb_grpc.GRPCInferenceServiceStub:
    return pb_grpc.GRPCInferenceServiceStub(channel)


def raw_request(z: np.ndarray, label: np.ndarray, **overrides: object) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(
        model_name="image.digits",
        id="req-1",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name="z", datatype="FP32", shape=list(z.shape)),
            pb.ModelInferRequest.InferInputTensor(name="label", datatype="INT64",
                                                  shape=list(label.shape)),
        ],
        raw_input_contents=[z.tobytes(), label.tobytes()],
    )
    for key, value in overrides.items():
        setattr(request, key, value)
    return request


def reference(z: np.ndarray, label: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(SERVED / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["image"], {"z": z, "label": label})[0])


def test_server_live_ready_and_metadata(oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    assert oip.ServerLive(pb.ServerLiveRequest()).live
    assert oip.ServerReady(pb.ServerReadyRequest()).ready
    meta = oip.ServerMetadata(pb.ServerMetadataRequest())
    assert meta.name == "museforge" and "model_configuration" in meta.extensions
    assert oip.ModelReady(pb.ModelReadyRequest(name="image.digits")).ready
    assert oip.ModelReady(pb.ModelReadyRequest(name="image.digits", version=SERVED.name)).ready
    assert not oip.ModelReady(pb.ModelReadyRequest(name="image.digits", version="9")).ready
    assert not oip.ModelReady(pb.ModelReadyRequest(name="nope")).ready


def test_model_metadata(oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    meta = oip.ModelMetadata(pb.ModelMetadataRequest(name="image.digits"))
    assert meta.platform == "onnxruntime_onnx" and list(meta.versions) == [SERVED.name]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("z", "FP32", [-1, 100]), ("label", "INT64", [-1, 1])  # Triton's: the batch axis, then dims
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("image", "FP32", [-1, 1, 28, 28])
    ]


def test_model_config(oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    config = oip.ModelConfig(pb.ModelConfigRequest(name="image.digits")).config
    assert config.name == "image.digits" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 256
    assert [(i.name, i.data_type, list(i.dims), reshape_of(i)) for i in config.input] == [
        ("z", pb.TYPE_FP32, [100], None), ("label", pb.TYPE_INT64, [1], [])  # a per-item scalar
    ]
    assert [(o.name, o.data_type, list(o.dims), reshape_of(o)) for o in config.output] == [
        ("image", pb.TYPE_FP32, [1, 28, 28], None)
    ]


def reshape_of(tensor: pb.ModelInput | pb.ModelOutput) -> list[int] | None:
    """A config tensor's Triton ``reshape``: the shape the model takes, None when it has none."""
    return list(tensor.reshape.shape) if tensor.HasField("reshape") else None


def test_every_model_config_gives_clients_a_shape_to_send(
    server: ServerThread, oip: pb_grpc.GRPCInferenceServiceStub
) -> None:
    """What perf_analyzer needs: with max_batch_size > 0 no tensor has empty dims, every dim
    is positive or -1, and ModelMetadata's shape is Triton's [-1] + dims."""
    assert server.running is not None
    names = [n for n, m in server.running.engine.runtime.models.items() if m.ready]
    assert "image.digits" in names and len(names) >= 10
    for name in names:
        config = oip.ModelConfig(pb.ModelConfigRequest(name=name)).config
        meta = oip.ModelMetadata(pb.ModelMetadataRequest(name=name))
        assert config.max_batch_size > 0, name
        for tensors, described in ((config.input, meta.inputs), (config.output, meta.outputs)):
            assert [t.name for t in tensors] == [t.name for t in described], name
            for tensor, metadata in zip(tensors, described, strict=True):
                dims = list(tensor.dims)
                assert len(dims) >= 1 and all(d > 0 or d == -1 for d in dims), (name, tensor.name, dims)
                assert list(metadata.shape) == [-1, *dims], (name, tensor.name)


def test_model_infer_raw_matches_onnx_runtime(oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 100)).astype(np.float32)
    label = np.arange(5, dtype=np.int64)
    reply = oip.ModelInfer(raw_request(z, label))
    assert reply.model_name == "image.digits" and reply.model_version == SERVED.name and reply.id == "req-1"
    [out] = reply.outputs
    assert (out.name, out.datatype, list(out.shape)) == ("image", "FP32", [5, 1, 28, 28])
    got = np.frombuffer(reply.raw_output_contents[0], np.float32).reshape(5, 1, 28, 28)
    np.testing.assert_allclose(got, reference(z, label), atol=1e-6)


def test_model_infer_typed_contents(oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2, 100)).astype(np.float32)
    label = np.array([3, 8], dtype=np.int64)
    request = pb.ModelInferRequest(
        model_name="image.digits",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="z", datatype="FP32", shape=[2, 100],
                contents=pb.InferTensorContents(fp32_contents=z.ravel().tolist())),
            pb.ModelInferRequest.InferInputTensor(
                name="label", datatype="INT64", shape=[2],
                contents=pb.InferTensorContents(int64_contents=label.tolist())),
        ],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="image")],
    )
    reply = oip.ModelInfer(request)
    assert not reply.raw_output_contents
    got = np.array(reply.outputs[0].contents.fp32_contents, np.float32).reshape(2, 1, 28, 28)
    np.testing.assert_allclose(got, reference(z, label), atol=1e-6)


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_a_per_item_scalar_may_come_as_b_or_b_by_1(oip: pb_grpc.GRPCInferenceServiceStub, raw: bool) -> None:
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4, 100)).astype(np.float32)
    label = np.array([1, 4, 7, 9], dtype=np.int64)

    def infer(labels: np.ndarray) -> np.ndarray:
        request = raw_request(z, labels)
        if not raw:
            del request.raw_input_contents[:]
            request.inputs[0].contents.fp32_contents.extend(z.ravel().tolist())
            request.inputs[1].contents.int64_contents.extend(labels.ravel().tolist())
        reply = oip.ModelInfer(request)
        assert list(reply.outputs[0].shape) == [4, 1, 28, 28]  # outputs as they are: no reshape
        if raw:
            return np.frombuffer(reply.raw_output_contents[0], np.float32).reshape(4, 1, 28, 28)
        return np.array(reply.outputs[0].contents.fp32_contents, np.float32).reshape(4, 1, 28, 28)

    flat = infer(label)
    np.testing.assert_allclose(flat, reference(z, label), atol=1e-6)
    for _ in range(2):  # the second time, its headers are known: the remembered path
        np.testing.assert_array_equal(infer(label.reshape(4, 1)), flat)


def test_a_per_item_scalar_of_another_shape_is_invalid_argument(
    oip: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    z = np.zeros((4, 100), np.float32)
    for shape in [(4, 2), (4, 1, 1), (1, 4)]:
        with pytest.raises(grpc.RpcError) as info:
            oip.ModelInfer(raw_request(z, np.zeros(shape, np.int64)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, shape
        [(field, description)] = field_violations(info.value)
        assert field == "inputs[1].shape" and "'label'" in description, shape
    # The [B, 1] form keeps every other check: ranges name the input as before.
    with pytest.raises(grpc.RpcError) as info:
        oip.ModelInfer(raw_request(np.zeros((2, 100), np.float32), np.array([[3], [99]], np.int64)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(info.value)
    assert field == "inputs[1]" and "'label'" in description and "[0, 9]" in description


def code_and_fields(oip: pb_grpc.GRPCInferenceServiceStub,
                    request: pb.ModelInferRequest) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.RpcError) as info:
        oip.ModelInfer(request)
    return info.value.code(), [f for f, _ in field_violations(info.value)]


def test_unknown_model_is_not_found(oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    z, label = np.zeros((1, 100), np.float32), np.zeros(1, np.int64)
    code, _ = code_and_fields(oip, raw_request(z, label, model_name="image.nothing"))
    assert code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        oip.ModelMetadata(pb.ModelMetadataRequest(name="image.nothing"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_wrong_datatype_shape_and_byte_count_are_invalid_argument(
    oip: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    z, label = np.zeros((2, 100), np.float32), np.zeros(2, np.int64)
    wrong_type = raw_request(z.astype(np.float64), label)
    wrong_type.inputs[0].datatype = "FP64"
    assert code_and_fields(oip, wrong_type) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                ["inputs[0].datatype"])
    wrong_shape = raw_request(np.zeros((2, 99), np.float32), label)
    assert code_and_fields(oip, wrong_shape) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                 ["inputs[0].shape"])
    short = raw_request(z, label)
    short.raw_input_contents[0] = z.tobytes()[:-4]
    assert code_and_fields(oip, short) == (grpc.StatusCode.INVALID_ARGUMENT,
                                           ["raw_input_contents[0]"])
    mismatched = raw_request(z, np.zeros(3, np.int64))
    assert code_and_fields(oip, mismatched)[0] == grpc.StatusCode.INVALID_ARGUMENT
    too_big = raw_request(np.zeros((257, 100), np.float32), np.zeros(257, np.int64))
    assert code_and_fields(oip, too_big) == (grpc.StatusCode.INVALID_ARGUMENT, ["inputs[0].shape"])
    missing = raw_request(z, label)
    del missing.inputs[1]
    del missing.raw_input_contents[1]
    assert code_and_fields(oip, missing) == (grpc.StatusCode.INVALID_ARGUMENT, ["inputs"])
    bad_output = raw_request(z, label)
    bad_output.outputs.add(name="nope")
    assert code_and_fields(oip, bad_output) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                ["outputs[0].name"])
    huge = raw_request(z, label)
    huge.inputs[0].shape[:] = [2**40, 100]
    assert code_and_fields(oip, huge)[0] == grpc.StatusCode.INVALID_ARGUMENT
    # Still serving after every one of them.
    assert oip.ModelInfer(raw_request(z, label)).outputs[0].name == "image"


def test_values_outside_the_declared_range_are_invalid_argument(
    oip: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    z = np.zeros((2, 100), np.float32)
    for label in ([3, 99], [-1, 0]):
        with pytest.raises(grpc.RpcError) as info:
            oip.ModelInfer(raw_request(z, np.array(label, np.int64)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        [(field, description)] = field_violations(info.value)
        assert field == "inputs[1]" and "'label'" in description and "[0, 9]" in description


def image_request(model: str, shape: list[int], **extra: np.ndarray) -> pb.ModelInferRequest:
    image = np.zeros(shape, np.float32)
    request = pb.ModelInferRequest(model_name=model)
    for name, array in {"image": image, **extra}.items():
        datatype = "FP32" if array.dtype == np.float32 else "INT64"
        request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        request.raw_input_contents.append(array.tobytes())
    return request


def test_size_limits_refuse_before_any_work() -> None:
    # A server whose messages are small: an x4 upscale of 300 x 300 (1 MiB in) would answer
    # 17 MiB, which could never be sent; it is refused before the model runs.
    settings = Settings(address="127.0.0.1:0", max_message_bytes=8 << 20)
    with ServerThread(settings) as server, grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        code, fields = code_and_fields(stub, image_request("effect.upscale_x4", [1, 3, 300, 300]))
        assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["inputs[0].shape"])
        reply = stub.ModelInfer(image_request("effect.upscale_x4", [1, 3, 100, 100]))
        assert list(reply.outputs[0].shape) == [1, 3, 400, 400]
        stats = stub.ModelStatistics(pb.ModelStatisticsRequest(name="effect.upscale_x4"))
        assert stats.model_stats[0].inference_stats.fail.count == 0  # never reached the model


def test_a_model_takes_no_more_than_its_plugin_feeds_it(oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    # effect.stylize's manifest: 7,207,298 elements, two 1,096-px tiles (the effect's largest run).
    with pytest.raises(grpc.RpcError) as info:
        oip.ModelInfer(image_request("effect.stylize", [1, 3, 1600, 1600], style=np.zeros(1, np.int64)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(info.value)
    assert field == "inputs[0].shape" and "7,207,298" in description


def test_a_server_fault_is_internal_with_a_correlation_id() -> None:
    with ServerThread(Settings(address="127.0.0.1:0", plugins=["image"])) as server, \
            grpc.insecure_channel(server.address) as channel:
        assert server.running is not None
        batcher = server.running.engine.runtime.models["image.digits"].batcher
        assert batcher is not None

        def broken(feed: object) -> dict[str, np.ndarray]:
            raise MemoryError("no memory left")  # a fault of the server, not of the request

        batcher.run = broken
        z, label = np.zeros((1, 100), np.float32), np.zeros(1, np.int64)
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(raw_request(z, label))
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "correlation id" in (info.value.details() or "")


def test_shipped_manifests_declare_what_their_recipes_declare() -> None:
    """Ranges, input bounds and output axes: written by hand into the shipped manifests, and
    what a fresh export of each recipe's spec writes."""
    from museforge.export.spec import ExportSpec
    from museforge.plugins.effect import (
        denoise_recipe,
        interpolate_recipe,
        restore_recipe,
        stylize_recipe,
        upscale_recipe,
    )
    from museforge.plugins.image import digits_recipe, faces_recipe, texture_recipe
    from museforge.plugins.mesh import props_recipe
    from museforge.plugins.music import melody_recipe
    from museforge.runtime.manifest import Manifest

    quality = (float(restore_recipe.QUALITY_RANGE[0]), float(restore_recipe.QUALITY_RANGE[1]))
    specs: dict[str, ExportSpec] = {
        "effect/models/denoise": denoise_recipe.restorer_spec("sigma", denoise_recipe.SIGMA_TRAIN,
                                                               denoise_recipe.SIGMA_SERVED),
        "effect/models/restore": denoise_recipe.restorer_spec("quality", quality, quality),
        "effect/models/interpolate": interpolate_recipe.SPEC,
        "effect/models/stylize": stylize_recipe.SPEC,
        "effect/models/upscale_x2": upscale_recipe.spec(2),
        "effect/models/upscale_x4": upscale_recipe.spec(4),
        "image/models/digits": digits_recipe.SPEC,
        "image/models/faces": faces_recipe.SPEC,
        "image/models/texture": texture_recipe.SPEC,
        "mesh/models/props": props_recipe.DECODER_SPEC,
        "mesh/models/props_encoder": props_recipe.ENCODER_SPEC,
        "music/models/melody": melody_recipe.SPEC,
    }
    plugins = MODELS_DIR.parent.parent.parent
    for where, spec in specs.items():
        manifest = Manifest.read(plugins / where / "1")
        assert {t.name: t.range for t in manifest.inputs} == {t.name: t.range for t in spec.inputs}, where
        assert manifest.max_input_elements == spec.max_input_elements, where
        assert {a: (r.axis, r.scale) for a, r in manifest.output_axes.items()} == dict(spec.output_axes)
    assert {t.name: t.range for t in Manifest.read(SERVED).inputs} == {"z": None, "label": (0, 9)}

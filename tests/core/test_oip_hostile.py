"""Open Inference Protocol requests a careless or hostile caller sends, over gRPC and REST.

Each was found answered wrongly: an empty axis that aborted ONNX Runtime (and the server with
it) on the music models, a version in non-ASCII digits, lone surrogates and nulls in JSON,
non-string ids, misnamed fields, and a statistics extension advertised with no REST route.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from museforge.config import Settings
from museforge.inference import grpc_service_pb2 as pb
from museforge.inference import grpc_service_pb2_grpc as pb_grpc
from tests.servers import ServerThread

Z = [0.01 * i for i in range(100)]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(Settings(address="127.0.0.1:0", http_address="127.0.0.1:0",
                               plugins=["image", "music"])) as running:
        yield running


@pytest.fixture(scope="module")
def oip(server: ServerThread) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def rest(server: ServerThread, verb: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(verb, path, body=body, headers={**sent, **(headers or {})})
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read() or b"null")
    finally:
        connection.close()


def digits(**fields: Any) -> bytes:
    document = {"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 100], "data": Z},
                           {"name": "label", "datatype": "INT64", "shape": [1, 1], "data": [3]}]}
    document.update(fields)
    return json.dumps(document).encode()


def infer(server: ServerThread, body: bytes, model: str = "image.digits") -> tuple[int, Any]:
    return rest(server, "POST", f"/v2/models/{model}/infer", body)


def still_serving(oip: pb_grpc.GRPCInferenceServiceStub) -> bool:
    return oip.ServerLive(pb.ServerLiveRequest()).live


def harmony_request(steps: int) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="music.harmony")
    for name in ("soprano", "degree", "ahead1", "ahead2", "onset", "accent", "bars_left"):
        request.inputs.add(name=name, datatype="INT64", shape=[1, steps])
        request.raw_input_contents.append(bytes(8 * steps))
    for name in ("tonic", "minor"):
        request.inputs.add(name=name, datatype="INT64", shape=[1, 1])
        request.raw_input_contents.append(bytes(8))
    request.inputs.add(name="state", datatype="FP32", shape=[1, 1, 128])
    request.raw_input_contents.append(bytes(512))
    return request


def test_an_empty_axis_is_refused_before_the_model_runs(server: ServerThread,
                                                        oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    # ONNX Runtime aborts its process on the music models' recurrent steps with a zero-length axis.
    with pytest.raises(grpc.RpcError) as refused:
        oip.ModelInfer(harmony_request(0))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inputs[0].shape" in (refused.value.details() or "") and ">= 1" in (refused.value.details() or "")
    document = {"inputs": [{"name": name, "datatype": "INT64", "shape": [0, 1], "data": []}
                           for name in ("token", "position", "bars_left", "style", "tonic", "mode", "metre")]
                + [{"name": "state", "datatype": "FP32", "shape": [0, 2, 256], "data": []}]}
    status, reply = infer(server, json.dumps(document).encode(), "music.melody")
    assert status == 400 and reply["error"].startswith("inputs[0].shape:")
    status, reply = infer(server, digits(inputs=[{"name": "z", "datatype": "FP32", "shape": [0, 2**63],
                                                  "data": []}]))
    assert status == 400 and reply["error"].startswith("inputs[0].shape:")
    assert still_serving(oip)
    assert len(oip.ModelInfer(harmony_request(2)).outputs) > 0  # a real request still runs


@pytest.mark.parametrize("version", ["²", "٢", "9" * 5000],
                         ids=["superscript", "arabic-indic", "5000-digits"])
def test_a_version_in_other_digits_is_not_served(server: ServerThread, oip: pb_grpc.GRPCInferenceServiceStub,
                                                version: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        oip.ModelMetadata(pb.ModelMetadataRequest(name="image.digits", version=version))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert not oip.ModelReady(pb.ModelReadyRequest(name="image.digits", version=version)).ready
    quoted = "".join(f"%{b:02X}" for b in version.encode()) if not version.isascii() else version
    assert rest(server, "GET", f"/v2/models/image.digits/versions/{quoted}")[0] == 404
    assert rest(server, "GET", f"/v2/models/image.digits/versions/{quoted}/stats")[0] == 404


def test_a_version_with_a_leading_zero_means_the_same_in_every_call(oip: pb_grpc.GRPCInferenceServiceStub
                                                                    ) -> None:
    version = oip.ModelMetadata(pb.ModelMetadataRequest(name="image.digits")).versions[-1]
    padded = "0" + version
    assert oip.ModelReady(pb.ModelReadyRequest(name="image.digits", version=padded)).ready
    stats = oip.ModelStatistics(pb.ModelStatisticsRequest(name="image.digits", version=padded))
    assert [(s.name, s.version) for s in stats.model_stats] == [("image.digits", version)]


@pytest.mark.parametrize(("body", "field"), [
    (rb'{"id": "\ud800", "inputs": []}', "id"),
    (rb'{"inputs": [{"name": "z\udc00", "datatype": "FP32", "shape": [1], "data": [1.0]}]}',
     "inputs[0].name"),
    (rb'{"parameters": {"k": "\udbff"}, "inputs": []}', "parameters.k"),
])
def test_a_lone_surrogate_in_json_is_refused_naming_the_field(server: ServerThread, body: bytes,
                                                              field: str) -> None:
    status, reply = infer(server, body)
    assert status == 400 and reply["error"].startswith(f"{field}: ") and "surrogate" in reply["error"]
    # A surrogate pair is one character (an emoji): text, taken.
    assert infer(server, digits(id="\U0001F600"))[1]["id"] == "\U0001F600"


@pytest.mark.parametrize(("datatype", "shape", "data"), [
    ("FP32", [1, 100], [None, *Z[1:]]), ("BYTES", [1], [None]), ("INT64", [1, 1], [None])])
def test_null_in_tensor_data_is_refused(server: ServerThread, datatype: str, shape: list[int],
                                        data: list[Any]) -> None:
    status, reply = infer(server, digits(inputs=[{"name": "z", "datatype": datatype, "shape": shape,
                                                  "data": data}]))
    assert status == 400
    # A wrong datatype is named first when the model takes another; FP32 reaches the data itself.
    if datatype == "FP32":
        assert reply["error"] == "inputs[0].data: FP32 data cannot hold null"
    else:
        assert reply["error"].startswith("inputs[0].") and "NoneType" not in reply["error"]


def test_an_integer_out_of_its_datatypes_range_says_so(server: ServerThread) -> None:
    status, reply = infer(server, digits(inputs=[
        {"name": "z", "datatype": "FP32", "shape": [1, 100], "data": Z},
        {"name": "label", "datatype": "INT64", "shape": [1, 1], "data": [2**70]}]))
    assert status == 400 and reply["error"].startswith("inputs[1].data: INT64 data cannot hold 118059")
    assert "its range is" in reply["error"]


@pytest.mark.parametrize(("identifier", "status"), [(None, 200), ("abc", 200), (7, 400), ({"a": 1}, 400)])
def test_the_request_id_is_a_string(server: ServerThread, identifier: Any, status: int) -> None:
    got, reply = infer(server, digits(id=identifier))
    assert got == status
    if status == 200:
        assert reply["id"] == (identifier or "")
    else:
        assert reply["error"].startswith("id: a string is required")


def test_binary_data_of_the_wrong_size_names_its_parameter(server: ServerThread) -> None:
    header = json.dumps({"inputs": [
        {"name": "z", "datatype": "FP32", "shape": [1, 100], "parameters": {"binary_data_size": 404}},
        {"name": "label", "datatype": "INT64", "shape": [1, 1],
         "parameters": {"binary_data_size": 4}}]}).encode()
    body = header + bytes(408)
    status, reply = rest(server, "POST", "/v2/models/image.digits/infer", body,
                         {"Inference-Header-Content-Length": str(len(header))})
    assert status == 400 and reply["error"].startswith("inputs[0].parameters.binary_data_size: ")
    status, reply = rest(server, "POST", "/v2/models/image.digits/infer", body,
                         {"Inference-Header-Content-Length": "0"})
    assert status == 400 and reply["error"].startswith("Inference-Header-Content-Length")


def test_the_statistics_the_server_advertises_have_rest_routes(server: ServerThread) -> None:
    assert "statistics" in rest(server, "GET", "/v2")[1]["extensions"]
    assert infer(server, digits())[0] == 200
    status, reply = rest(server, "GET", "/v2/models/image.digits/stats")
    assert status == 200
    [stats] = [s for s in reply["model_stats"] if s["name"] == "image.digits"]
    assert isinstance(stats["inference_count"], int) and stats["inference_count"] >= 1
    assert stats["inference_stats"]["success"]["count"] >= 1
    version = stats["version"]
    assert rest(server, "GET", f"/v2/models/image.digits/versions/{version}/stats")[1] == reply
    everything = rest(server, "GET", "/v2/models/stats")[1]["model_stats"]
    assert {"image.digits", "music.melody"} <= {s["name"] for s in everything}
    status, reply = rest(server, "GET", "/v2/models/nope/stats")
    assert status == 404 and "nope" in reply["error"]


def test_a_compressed_body_is_refused_naming_content_encoding(server: ServerThread) -> None:
    import gzip

    body = digits()
    status, reply = rest(server, "POST", "/v2/models/image.digits/infer", gzip.compress(body),
                         {"Content-Encoding": "gzip"})
    assert status == 415 and reply["error"].startswith("Content-Encoding 'gzip' is not accepted")
    # A plain body labelled compressed is not taken as plain either; identity is no compression.
    assert rest(server, "POST", "/v2/models/image.digits/infer", body, {"Content-Encoding": "br"})[0] == 415
    plain = rest(server, "POST", "/v2/models/image.digits/infer", body, {"Content-Encoding": "identity"})
    assert plain[0] == 200


def test_two_binary_header_lengths_are_refused(server: ServerThread) -> None:
    header = json.dumps({"inputs": [
        {"name": "z", "datatype": "FP32", "shape": [1, 100], "parameters": {"binary_data_size": 400}},
        {"name": "label", "datatype": "INT64", "shape": [1, 1], "parameters": {"binary_data_size": 8}}]})
    body = header.encode() + np.zeros(100, np.float32).tobytes() + np.array([3], np.int64).tobytes()
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest("POST", "/v2/models/image.digits/infer")
        connection.putheader("Content-Length", str(len(body)))
        connection.putheader("Inference-Header-Content-Length", str(len(header)))
        connection.putheader("Inference-Header-Content-Length", str(len(header) + 5))
        connection.endheaders(body)
        reply = connection.getresponse()
        status, document = reply.status, json.loads(reply.read())
    finally:
        connection.close()
    assert status == 400 and document["error"] == "more than one Inference-Header-Content-Length header"


def test_an_output_asked_twice_or_classified_is_refused(server: ServerThread,
                                                        oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    status, reply = infer(server, digits(outputs=[{"name": "image"}, {"name": "image"}]))
    assert status == 400 and reply["error"].startswith("outputs[1].name: output 'image' is requested twice")
    status, reply = infer(server, digits(outputs=[{"name": "image", "parameters": {"classification": 3}}]))
    assert status == 400 and reply["error"].startswith("outputs[0].parameters.classification: ")
    request = pb.ModelInferRequest(model_name="image.digits", inputs=[
        pb.ModelInferRequest.InferInputTensor(name="z", datatype="FP32", shape=[1, 100]),
        pb.ModelInferRequest.InferInputTensor(name="label", datatype="INT64", shape=[1, 1])],
        raw_input_contents=[np.zeros(100, np.float32).tobytes(), np.array([3], np.int64).tobytes()])
    wanted = request.outputs.add(name="image")
    wanted.parameters["classification"].int64_param = 2
    with pytest.raises(grpc.RpcError) as raised:
        oip.ModelInfer(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "classification extension is not supported" in (raised.value.details() or "")


def test_the_server_never_fell_over(oip: pb_grpc.GRPCInferenceServiceStub) -> None:
    assert still_serving(oip)
    z = np.zeros((1, 100), np.float32)
    request = pb.ModelInferRequest(model_name="image.digits")
    request.inputs.add(name="z", datatype="FP32", shape=[1, 100])
    request.inputs.add(name="label", datatype="INT64", shape=[1, 1])
    request.raw_input_contents.extend([z.tobytes(), np.array([[1]], np.int64).tobytes()])
    assert oip.ModelInfer(request).outputs[0].name == "image"

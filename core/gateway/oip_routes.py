"""The Open Inference Protocol's REST form (``/v2/...``, KServe v2) on the HTTP gateway.

Its JSON is the protocol's own, not the proto3 mapping: shapes are numbers, tensor data
is a (flat or nested) JSON array, errors are ``{"error": "<message>"}``. Each request
is turned into the same ``inference.GRPCInferenceService`` call a gRPC client makes:
tensors travel in ``raw_input_contents``, so every datatype (FP16 too) has one path, and
so do tensors sent in Triton's binary tensor extension (``binary_tensors``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import numpy as np
import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ..inference import grpc_service_pb2 as pb
from ..server.oip_datatypes import OIP_DATATYPES, TensorError, element_width, numpy_dtype
from ..server.oip_decode import EMPTY_OR_NEGATIVE, decode_raw, decode_typed
from ..server.oip_encode import encode_raw
from .binary_tensors import (
    NO_TAIL,
    OUTPUT_FLAG,
    REQUEST_FLAG,
    SIZE,
    BinaryOutputs,
    Tail,
    binary_body,
    output_flag,
    raw_output,
    split_body,
)
from .json_codec import bad_request, is_repeated
from .reply import dumps
from .routes import Route

OIP = "/inference.GRPCInferenceService/"
MAX_ELEMENTS = 64 * 1024 * 1024  # per tensor, as over gRPC
INT64 = (-(1 << 63), (1 << 63) - 1)
INFER = OIP + "ModelInfer"
_NONE_WRONG = object()


def elements(data: list[Any], datatype: str) -> np.ndarray:
    """The JSON array's elements, flat, each of the JSON type the datatype needs.

    numpy alone would turn 1.7 into an INT32 1, "false" into a true BOOL and "3" into an
    FP32 3.0: the protocol's JSON has one type per datatype, so anything else is refused.
    """
    flat = np.asarray(data, dtype=object).ravel()
    if datatype == "BOOL":
        wrong = next((v for v in flat if not isinstance(v, bool)), _NONE_WRONG)
    elif datatype == "BYTES":
        wrong = next((v for v in flat if not isinstance(v, str)), _NONE_WRONG)
    elif datatype.startswith(("INT", "UINT")):
        limits = np.iinfo(numpy_dtype(datatype))
        low, high = int(limits.min), int(limits.max)
        wrong = next((v for v in flat if isinstance(v, bool) or not isinstance(v, int)
                      or not low <= v <= high), _NONE_WRONG)
        if isinstance(wrong, int) and not isinstance(wrong, bool):
            raise ValueError(f"{datatype} data cannot hold {str(wrong)[:40]}: its range is {low} to {high}")
    else:
        wrong = next((v for v in flat if isinstance(v, bool) or not isinstance(v, (int, float))), _NONE_WRONG)
    if wrong is not _NONE_WRONG:  # null is wrong too: a sentinel, not None, marks "nothing wrong"
        raise ValueError(f"{datatype} data cannot hold {json.dumps(wrong)[:40]}")
    if datatype == "BYTES":
        return np.array([v.encode() for v in flat], dtype=object)
    return np.asarray(flat.tolist(), dtype=numpy_dtype(datatype))


P = TypeVar("P", pb.InferParameter, pb.ModelRepositoryParameter)


def parameter(kind: type[P], value: Any, field: str) -> P:
    """One JSON parameter value as ``kind`` (the two messages share field names; only the
    inference one holds floats)."""
    floats = "double_param" in kind.DESCRIPTOR.fields_by_name
    if isinstance(value, bool):
        return kind(bool_param=value)
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise bad_request(field, "an integer parameter must fit in 64 bits")
        return kind(int64_param=value)
    if isinstance(value, float) and floats:
        return cast(P, pb.InferParameter(double_param=value))  # only the inference kind has floats
    if isinstance(value, str):  # Triton's repository "config" and base64 "file:" contents too
        return kind(string_param=value)
    raise bad_request(field, f"must be a boolean, {'number' if floats else 'integer'} or string")


def _parameters(values: Mapping[str, Any], field: str) -> dict[str, pb.InferParameter]:
    return {key: parameter(pb.InferParameter, value, f"{field}.{key}") for key, value in values.items()}


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def json_data(data: Any, datatype: str, shape: list[int], where: str) -> bytes:
    """An input's JSON ``data``, encoded as raw little-endian bytes."""
    if not isinstance(data, list):
        raise bad_request(f"{where}.data", "a JSON array is required")
    try:
        array = elements(data, datatype)
        if array.size != math.prod(shape):
            raise ValueError(f"{array.size} elements for shape {shape}")
        return encode_raw(array.reshape(shape), datatype, where)
    except (ValueError, TypeError, OverflowError, TensorError) as exc:
        raise bad_request(f"{where}.data", str(exc)) from exc


def input_tensor(document: Any, index: int, tail: Tail = NO_TAIL
                 ) -> tuple[pb.ModelInferRequest.InferInputTensor, bytes]:
    """One entry of ``inputs``: its metadata, and its data as raw little-endian bytes (from its
    JSON ``data``, or the body's binary part when it has a ``binary_data_size``)."""
    where = f"inputs[{index}]"
    entry = _object(document, where)
    name, datatype, shape, data = (entry.get(k) for k in ("name", "datatype", "shape", "data"))
    if not isinstance(name, str) or not name:
        raise bad_request(f"{where}.name", "a non-empty string is required")
    if datatype not in OIP_DATATYPES:
        raise bad_request(f"{where}.datatype", f"one of {', '.join(sorted(OIP_DATATYPES))} is required")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise bad_request(f"{where}.shape", "a list of integers is required")
    if any(d < 1 for d in shape):
        raise bad_request(f"{where}.shape", EMPTY_OR_NEGATIVE.format(shape))
    if math.prod(shape) > MAX_ELEMENTS:
        raise bad_request(f"{where}.shape", f"over {MAX_ELEMENTS} elements")
    parameters = _object(entry.get("parameters", {}), f"{where}.parameters")
    if SIZE in parameters:
        if data is not None:
            raise bad_request(f"{where}.data", f"input {name!r} has {SIZE}: its data is the binary part's")
        raw = tail.take(parameters[SIZE], where, name)
        needed = 0 if datatype == "BYTES" else math.prod(shape) * element_width(datatype)
        if needed and len(raw) != needed:
            raise bad_request(f"{where}.parameters.{SIZE}", f"input {name!r} has {len(raw)} bytes of binary "
                              f"data; {datatype} shape {shape} needs {needed}")
        parameters = {k: v for k, v in parameters.items() if k != SIZE}  # the transport's, not the model's
    else:
        raw = json_data(data, datatype, shape, where)
    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
    for key, value in _parameters(parameters, f"{where}.parameters").items():
        tensor.parameters[key].CopyFrom(value)
    return tensor, raw


def infer_request(variables: Mapping[str, str], document: Any) -> pb.ModelInferRequest:
    return read_infer(variables, document)[0]


def infer_from_body(variables: Mapping[str, str], raw: bytearray, header_length: int | None
                    ) -> tuple[pb.ModelInferRequest, BinaryOutputs | None]:
    """The call's request from a JSON body, or (with ``header_length``) a binary-extension body,
    and the outputs to reply as binary data (None: a plain JSON reply)."""
    document, tail = split_body(raw, header_length)
    return read_infer(variables, document, tail)


def read_infer(variables: Mapping[str, str], document: Any, tail: Tail = NO_TAIL
               ) -> tuple[pb.ModelInferRequest, BinaryOutputs | None]:
    body = _object(document, "body")
    identifier = body.get("id")
    if identifier is not None and not isinstance(identifier, str):
        raise bad_request("id", f"a string is required, got {type(identifier).__name__}")
    request = pb.ModelInferRequest(model_name=variables["name"], model_version=variables.get("version", ""),
                                   id=identifier or "")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request("inputs", "a non-empty JSON array is required")
    for index, entry in enumerate(inputs):
        tensor, raw = input_tensor(entry, index, tail)
        request.inputs.append(tensor)
        request.raw_input_contents.append(raw)
    tail.finish()
    parameters = _object(body.get("parameters", {}), "parameters")
    binary = BinaryOutputs()
    if REQUEST_FLAG in parameters:
        if not isinstance(parameters[REQUEST_FLAG], bool):
            raise bad_request(f"parameters.{REQUEST_FLAG}", "must be true or false")
        binary.default = parameters[REQUEST_FLAG]
        parameters = {k: v for k, v in parameters.items() if k != REQUEST_FLAG}
    outputs = body.get("outputs", [])
    if not isinstance(outputs, list):
        raise bad_request("outputs", "a JSON array of {\"name\": ...} objects is required")
    for index, wanted in enumerate(outputs):
        entry = _object(wanted, f"outputs[{index}]")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request(f"outputs[{index}].name", "a non-empty string is required")
        added = request.outputs.add(name=name)
        flag = output_flag(entry, f"outputs[{index}]")
        if flag is not None:
            binary.named[name] = flag
        # The rest reach the service, which refuses what it does not offer (classification).
        others = {k: v for k, v in (entry.get("parameters") or {}).items() if k != OUTPUT_FLAG}
        for key, value in _parameters(others, f"outputs[{index}].parameters").items():
            added.parameters[key].CopyFrom(value)
    for key, value in _parameters(parameters, "parameters").items():
        request.parameters[key].CopyFrom(value)
    return request, binary if binary.any() else None


def output_data(reply: pb.ModelInferResponse, index: int) -> list[Any] | np.ndarray | orjson.Fragment:
    tensor = reply.outputs[index]
    shape = tuple(int(d) for d in tensor.shape)
    if reply.raw_output_contents:
        array = decode_raw(reply.raw_output_contents[index], tensor.datatype, shape, f"outputs[{index}]")
    else:
        array = decode_typed(tensor.contents, tensor.datatype, shape, f"outputs[{index}]")
    if tensor.datatype == "BYTES":
        return [v.decode("utf-8", "replace") for v in array.ravel().tolist()]
    flat = np.ascontiguousarray(array.ravel())
    if flat.dtype.kind == "f" and not np.isfinite(flat).all():
        # JSON has no NaN or infinity, and the JSON writer would make each a null, so that gRPC
        # and REST disagreed and NaN, +inf and -inf looked alike. Written as the tokens
        # NaN, Infinity, -Infinity: what this gateway reads in a request, as Python's json and
        # Triton's clients do. (Binary outputs carry the exact bits for any client.)
        return orjson.Fragment(json.dumps(flat.tolist(), allow_nan=True, separators=(",", ":")))
    return flat  # the gateway's JSON writer takes numpy arrays as they are


def infer_reply(reply: Message) -> tuple[int, dict[str, Any]]:
    assert isinstance(reply, pb.ModelInferResponse)
    outputs = [{"name": t.name, "datatype": t.datatype, "shape": [int(d) for d in t.shape],
                "data": output_data(reply, i)} for i, t in enumerate(reply.outputs)]
    return 200, {"model_name": reply.model_name, "model_version": reply.model_version, "id": reply.id,
                 "outputs": outputs}


def infer_reply_binary(reply: Message, binary: BinaryOutputs) -> tuple[bytes, int | None]:
    """The reply with the outputs asked for as binary data after its JSON; the body and the
    JSON's length (None: no bytes follow, a plain JSON reply)."""
    assert isinstance(reply, pb.ModelInferResponse)
    outputs, chunks = [], []
    for index, tensor in enumerate(reply.outputs):
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype,
                                 "shape": [int(d) for d in tensor.shape]}
        if binary.wanted(tensor.name):
            chunks.append(raw_output(reply, index))
            entry["parameters"] = {SIZE: len(chunks[-1])}
        else:
            entry["data"] = output_data(reply, index)
        outputs.append(entry)
    header = dumps({"model_name": reply.model_name, "model_version": reply.model_version, "id": reply.id,
                    "outputs": outputs})
    return binary_body(header, chunks)


def tensor_metadata(tensors: Any) -> list[dict[str, Any]]:
    return [{"name": t.name, "datatype": t.datatype, "shape": [int(d) for d in t.shape]} for t in tensors]


def model_metadata(reply: Message) -> tuple[int, dict[str, Any]]:
    assert isinstance(reply, pb.ModelMetadataResponse)
    return 200, {"name": reply.name, "versions": list(reply.versions), "platform": reply.platform,
                 "inputs": tensor_metadata(reply.inputs), "outputs": tensor_metadata(reply.outputs)}


_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
          FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64}


def _int64_as_numbers(message: Message, document: dict[str, Any]) -> dict[str, Any]:
    """The proto3 JSON mapping writes 64-bit integers as strings; Triton's config JSON has
    numbers (``"dims": [1, 28, 28]``), which its clients and perf_analyzer read as such."""
    for field in message.DESCRIPTOR.fields:
        if field.name not in document:
            continue
        value = document[field.name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if entry.message_type is not None:
                    _int64_as_numbers(getattr(message, field.name)[key], item)
                elif entry.type in _INT64:
                    value[key] = int(item)
        elif field.type in _INT64:
            document[field.name] = [int(v) for v in value] if is_repeated(field) else int(value)
        elif field.message_type is not None:
            children = getattr(message, field.name)
            pairs = zip(children, value, strict=True) if is_repeated(field) else [(children, value)]
            for child, item in pairs:
                _int64_as_numbers(child, item)
    return document


def model_config(reply: Message) -> tuple[int, dict[str, Any]]:
    """Triton's HTTP form of the ModelConfig RPC's answer: the ModelConfig itself as JSON,
    with the proto field names and every field with no presence (``max_batch_size: 0``)."""
    assert isinstance(reply, pb.ModelConfigResponse)
    document = json_format.MessageToDict(reply.config, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    return 200, _int64_as_numbers(reply.config, document)


def model_statistics(reply: Message) -> tuple[int, dict[str, Any]]:
    """Triton's HTTP statistics: the ModelStatistics answer with proto field names and 64-bit
    counts as JSON numbers (what ``tritonclient.http``'s ``get_inference_statistics`` reads)."""
    assert isinstance(reply, pb.ModelStatisticsResponse)
    document = json_format.MessageToDict(reply, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    return 200, _int64_as_numbers(reply, document)


def readiness(field: str) -> Callable[[Message], tuple[int, dict[str, Any]]]:
    def render(reply: Message) -> tuple[int, dict[str, Any]]:
        value = bool(getattr(reply, field))
        return (200 if value else 503), {field: value}  # the HTTP status is the answer, per the protocol

    return render


def server_metadata(reply: Message) -> tuple[int, dict[str, Any]]:
    assert isinstance(reply, pb.ServerMetadataResponse)
    return 200, {"name": reply.name, "version": reply.version, "extensions": list(reply.extensions)}


def by_name(request: type[Message]) -> Callable[[Mapping[str, str], Any], Message]:
    def build(variables: Mapping[str, str], document: Any) -> Message:
        return request(**variables)

    return build


def _model_routes(suffix: str) -> tuple[Route, ...]:
    """The model routes, with and without ``/versions/{version}``."""
    routes = []
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        if suffix == "/infer":
            routes.append(Route("POST", base + suffix, INFER, pb.ModelInferRequest,
                                pb.ModelInferResponse, "Runs a model (KServe v2 REST).",
                                build=infer_request, render=infer_reply))
        elif suffix == "/ready":
            routes.append(Route("GET", base + suffix, OIP + "ModelReady", pb.ModelReadyRequest,
                                pb.ModelReadyResponse, "Whether the model is ready (HTTP 503 if not).",
                                build=by_name(pb.ModelReadyRequest), render=readiness("ready")))
        elif suffix == "/stats":
            routes.append(Route("GET", base + suffix, OIP + "ModelStatistics", pb.ModelStatisticsRequest,
                                pb.ModelStatisticsResponse, "A model's inference statistics.",
                                build=by_name(pb.ModelStatisticsRequest), render=model_statistics))
        elif suffix == "/config":
            routes.append(Route("GET", base + suffix, OIP + "ModelConfig", pb.ModelConfigRequest,
                                pb.ModelConfigResponse, "A model's Triton configuration (JSON).",
                                build=by_name(pb.ModelConfigRequest), render=model_config))
        else:
            routes.append(Route("GET", base, OIP + "ModelMetadata", pb.ModelMetadataRequest,
                                pb.ModelMetadataResponse, "A model's inputs, outputs and versions.",
                                build=by_name(pb.ModelMetadataRequest), render=model_metadata))
    return tuple(routes)


OIP_ROUTES: tuple[Route, ...] = (
    Route("GET", "/v2/health/live", OIP + "ServerLive", pb.ServerLiveRequest, pb.ServerLiveResponse,
          "Liveness.", build=by_name(pb.ServerLiveRequest), render=readiness("live")),
    Route("GET", "/v2/health/ready", OIP + "ServerReady", pb.ServerReadyRequest, pb.ServerReadyResponse,
          "Readiness.", build=by_name(pb.ServerReadyRequest), render=readiness("ready")),
    Route("GET", "/v2", OIP + "ServerMetadata", pb.ServerMetadataRequest, pb.ServerMetadataResponse,
          "Server name, version and protocol extensions.", build=by_name(pb.ServerMetadataRequest),
          render=server_metadata),
    # Before /v2/models/{name}, as Triton routes it: every model's statistics.
    Route("GET", "/v2/models/stats", OIP + "ModelStatistics", pb.ModelStatisticsRequest,
          pb.ModelStatisticsResponse, "Every model's inference statistics.",
          build=by_name(pb.ModelStatisticsRequest), render=model_statistics),
    *_model_routes("/stats"),
    *_model_routes("/infer"),
    *_model_routes("/ready"),
    *_model_routes("/config"),
    *_model_routes(""),
)

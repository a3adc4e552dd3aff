"""Tensors on the Open Inference Protocol wire (KServe v2 / Triton gRPC).

Converts between `inference.ModelInferRequest`/`ModelInferResponse` tensors and
numpy arrays, and checks decoded inputs against a model's declared inputs. Every
rejection is a `TensorError` naming the request field at fault, so the servicer
can turn it into INVALID_ARGUMENT with a field violation.

Wire rules (from the protocol's proto):
- raw form: `raw_input_contents[i]` holds input i, flattened row-major,
  little-endian, no padding; BYTES elements are each a 4-byte little-endian
  length followed by the bytes. When raw is used no input may carry `contents`.
- typed form: INT8/INT16/INT32 travel in `int_contents`, UINT8/UINT16/UINT32 in
  `uint_contents`, the rest in the field of their own type. FP16 and BF16 have no
  typed field and must be sent raw.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..inference import grpc_service_pb2 as pb

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "OIP_DATATYPES",
    "ONNX_TO_OIP",
    "TensorError",
    "TensorSpec",
    "TensorSpecLike",
    "datatype_of",
    "decode_inputs",
    "encode_outputs",
    "numpy_dtype",
    "oip_from_onnx",
    "spec_from_onnx",
    "triton_data_type",
]

# 64 Mi elements (256 MiB of FP32): far above any museforge model input, far
# below what a lying shape could make us allocate.
DEFAULT_MAX_ELEMENTS = 64 * 1024 * 1024

# OIP datatype -> numpy dtype. BYTES is an object array of `bytes`, the same
# representation tritonclient's `as_numpy` returns.
_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}

# Every datatype we decode and encode. BF16 is valid on the wire but numpy has no
# bfloat16, so it is named in the maps below and rejected by decode/encode.
OIP_DATATYPES: frozenset[str] = frozenset(_NUMPY)

# ONNX Runtime's NodeArg.type strings -> OIP datatype.
ONNX_TO_OIP: Mapping[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
    "tensor(bfloat16)": "BF16",
}

# OIP datatype -> Triton model_config DataType (Triton calls BYTES "STRING").
_TRITON: Mapping[str, int] = {
    "BOOL": pb.TYPE_BOOL,
    "UINT8": pb.TYPE_UINT8,
    "UINT16": pb.TYPE_UINT16,
    "UINT32": pb.TYPE_UINT32,
    "UINT64": pb.TYPE_UINT64,
    "INT8": pb.TYPE_INT8,
    "INT16": pb.TYPE_INT16,
    "INT32": pb.TYPE_INT32,
    "INT64": pb.TYPE_INT64,
    "FP16": pb.TYPE_FP16,
    "FP32": pb.TYPE_FP32,
    "FP64": pb.TYPE_FP64,
    "BYTES": pb.TYPE_STRING,
    "BF16": pb.TYPE_BF16,
}

# OIP datatype -> the InferTensorContents field that carries it (None: raw only).
_CONTENTS_FIELD: Mapping[str, str | None] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP16": None,
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
    "BF16": None,
}

# The numpy dtype a typed field holds before narrowing to the tensor's dtype.
_FIELD_DTYPE: Mapping[str, np.dtype] = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}

_LEN_PREFIX = struct.Struct("<I")
_DATATYPE_OF: dict[np.dtype, str] = {dtype: name for name, dtype in _NUMPY.items()}


class TensorError(ValueError):
    """A tensor in a request (or response) that breaks the protocol or the model's contract."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TensorSpecLike(Protocol):
    """Anything with a tensor's name, OIP datatype and shape (-1 = any size).

    `TensorSpec` and `pb.ModelMetadataResponse.TensorMetadata` both qualify.
    """

    @property
    def name(self) -> str: ...

    @property
    def datatype(self) -> str: ...

    @property
    def shape(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output as the protocol describes it."""

    name: str
    datatype: str
    shape: tuple[int, ...]


# ---------------------------------------------------------------- type mappings


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype for an OIP datatype; ValueError for BF16 or unknown names."""
    try:
        return _NUMPY[datatype]
    except KeyError:
        raise ValueError(_unsupported(datatype)) from None


def datatype_of(array: np.ndarray) -> str:
    """The OIP datatype for a numpy array; str/bytes/object arrays are BYTES."""
    dtype = array.dtype
    known = _DATATYPE_OF.get(dtype)  # every output of every reply asks: answer the usual ones at once
    if known is not None:
        return known
    if dtype.kind in "OSU":
        return "BYTES"
    for name, candidate in _NUMPY.items():
        # Compare kind and size, not identity, so non-native byte orders still map.
        if candidate.kind == dtype.kind and candidate.itemsize == dtype.itemsize:
            return name
    raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype")


def oip_from_onnx(onnx_type: str) -> str:
    """The OIP datatype for an ONNX Runtime type string such as "tensor(float)"."""
    try:
        return ONNX_TO_OIP[onnx_type]
    except KeyError:
        raise ValueError(
            f"ONNX type {onnx_type!r} has no Open Inference Protocol datatype"
        ) from None


def triton_data_type(datatype: str) -> int:
    """The Triton `DataType` enum value (for ModelConfig) of an OIP datatype."""
    try:
        return _TRITON[datatype]
    except KeyError:
        raise ValueError(f"unknown datatype {datatype!r}") from None


def spec_from_onnx(name: str, onnx_type: str, shape: Sequence[int | str | None]) -> TensorSpec:
    """A TensorSpec from an ONNX Runtime NodeArg's name, type and shape.

    ORT reports a symbolic axis as a string ("batch") or None; both become -1.
    """
    dims = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)
    return TensorSpec(name=name, datatype=oip_from_onnx(onnx_type), shape=dims)


def _unsupported(datatype: str) -> str:
    if datatype == "BF16":
        return "BF16 is not supported by this server"
    return f"unknown datatype {datatype!r}; expected one of {', '.join(sorted(OIP_DATATYPES))}"


# ---------------------------------------------------------------- decoding


def decode_inputs(
    request: pb.ModelInferRequest, *, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> dict[str, np.ndarray]:
    """Decode every input tensor of a ModelInferRequest, in request order.

    Arrays decoded from raw contents are read-only views over the request's
    bytes (no copy); copy them before writing in place.
    """
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise TensorError(
            "raw_input_contents",
            f"has {len(raw)} entries for {len(request.inputs)} inputs; "
            "raw form needs exactly one entry per input, in input order",
        )
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        where = f"inputs[{i}]"
        if not tensor.name:
            raise TensorError(f"{where}.name", "must not be empty")
        if tensor.name in arrays:
            raise TensorError(f"{where}.name", f"duplicate input name {tensor.name!r}")
        if tensor.datatype not in OIP_DATATYPES:
            raise TensorError(f"{where}.datatype", _unsupported(tensor.datatype))
        shape = _checked_shape(tensor.shape, f"{where}.shape", max_elements)
        if raw:
            if tensor.contents.ListFields():
                raise TensorError(
                    f"{where}.contents",
                    "must not be set when raw_input_contents is used",
                )
            arrays[tensor.name] = decode_raw(
                raw[i], tensor.datatype, shape, f"raw_input_contents[{i}]"
            )
        else:
            arrays[tensor.name] = decode_typed(tensor.contents, tensor.datatype, shape, where)
    return arrays


def _checked_shape(dims: Sequence[int], field: str, max_elements: int) -> tuple[int, ...]:
    shape = tuple(dims)
    for d in shape:
        if d < 0:
            raise TensorError(field, f"dimensions must be >= 0 in a request, got {list(shape)}")
        # Bound each dim too: a zero elsewhere would let a huge one pass the product check.
        if d > max_elements:
            raise TensorError(field, f"dimension {d} exceeds the limit of {max_elements} elements")
    count = math.prod(shape)
    if count > max_elements:
        raise TensorError(
            field, f"shape {list(shape)} has {count} elements; the limit is {max_elements}"
        )
    return shape


def decode_raw(buf: bytes, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        return _decode_raw_bytes(buf, count, field).reshape(shape)
    dtype = _NUMPY[datatype]
    expected = count * dtype.itemsize
    if len(buf) != expected:
        raise TensorError(
            field,
            f"has {len(buf)} bytes; {datatype} shape {list(shape)} needs {expected}",
        )
    array = np.frombuffer(buf, dtype=dtype.newbyteorder("<"))
    if not array.dtype.isnative:  # only on big-endian hosts
        array = array.astype(dtype)
    if datatype == "BOOL" and array.size and array.view(np.uint8).max() > 1:
        raise TensorError(field, "BOOL elements must be bytes 0 or 1")
    return array.reshape(shape)


def _decode_raw_bytes(buf: bytes, count: int, field: str) -> np.ndarray:
    out = np.empty(count, dtype=np.object_)
    view = memoryview(buf)
    pos = 0
    for k in range(count):
        if pos + 4 > len(view):
            raise TensorError(field, f"ends inside the length prefix of BYTES element {k}")
        (size,) = _LEN_PREFIX.unpack_from(view, pos)
        pos += 4
        if pos + size > len(view):
            raise TensorError(field, f"BYTES element {k} declares {size} bytes past the end")
        out[k] = bytes(view[pos : pos + size])
        pos += size
    if pos != len(view):
        raise TensorError(
            field, f"has {len(view) - pos} bytes left over after {count} BYTES elements"
        )
    return out


def decode_typed(
    contents: pb.InferTensorContents, datatype: str, shape: tuple[int, ...], where: str
) -> np.ndarray:
    count = math.prod(shape)
    expected_field = _CONTENTS_FIELD[datatype]
    present = [fd.name for fd, _ in contents.ListFields()]
    if expected_field is None:
        if count == 0 and not present:
            return np.empty(shape, dtype=_NUMPY[datatype])
        raise TensorError(
            f"{where}.contents",
            f"{datatype} has no typed representation; send it in raw_input_contents",
        )
    stray = [name for name in present if name != expected_field]
    if stray:
        raise TensorError(
            f"{where}.contents",
            f"{datatype} data belongs in {expected_field}; found {', '.join(stray)}",
        )
    values = getattr(contents, expected_field)
    field = f"{where}.contents.{expected_field}"
    if len(values) != count:
        raise TensorError(field, f"has {len(values)} elements; shape {list(shape)} needs {count}")
    if datatype == "BYTES":
        array = np.empty(count, dtype=np.object_)
        array[:] = list(values)
        return array.reshape(shape)
    # np.array reads the repeated field as a sequence: several times faster than np.fromiter.
    wide = np.array(values, dtype=_FIELD_DTYPE[expected_field])
    target = _NUMPY[datatype]
    if target.itemsize < wide.itemsize and count:
        # Narrow types share the 32-bit fields; refuse values that would wrap.
        info = np.iinfo(target)
        if wide.min() < info.min or wide.max() > info.max:
            raise TensorError(field, f"values out of range for {datatype}")
    return wide.astype(target, copy=False).reshape(shape)


# ---------------------------------------------------------------- encoding


def encode_outputs(
    outputs: Mapping[str, np.ndarray], *, raw: bool
) -> tuple[list[pb.ModelInferResponse.InferOutputTensor], list[bytes]]:
    """Output tensor metadata plus, in raw form, one buffer per output.

    Put the first list in `ModelInferResponse.outputs` and the second in
    `raw_output_contents`. With raw=False the typed `contents` are filled and the
    second list is empty, unless an output is FP16: it has no typed field and the
    protocol forbids mixing forms, so the whole response falls back to raw.
    tritonclient's `as_numpy` reads only raw contents (and bytes_contents), so
    raw=True is the right default for a server.
    """
    datatypes: list[str] = []
    for i, (name, array) in enumerate(outputs.items()):
        try:
            datatype = datatype_of(array)
        except ValueError as exc:
            raise TensorError(f"outputs[{i}].datatype", f"{name!r}: {exc}") from None
        datatypes.append(datatype)
    use_raw = raw or any(_CONTENTS_FIELD[dt] is None for dt in datatypes)

    tensors: list[pb.ModelInferResponse.InferOutputTensor] = []
    buffers: list[bytes] = []
    for i, ((name, array), datatype) in enumerate(zip(outputs.items(), datatypes, strict=True)):
        tensor = pb.ModelInferResponse.InferOutputTensor(
            name=name, datatype=datatype, shape=list(array.shape)
        )
        where = f"outputs[{i}]"
        if use_raw:
            buffers.append(encode_raw(array, datatype, where))
        else:
            _fill_typed(tensor.contents, array, datatype, where)
        tensors.append(tensor)
    return tensors, buffers


def encode_raw(array: np.ndarray, datatype: str, where: str) -> bytes:
    if datatype == "BYTES":
        parts: list[bytes] = []
        for item in _bytes_elements(array, where):
            parts.append(_LEN_PREFIX.pack(len(item)))
            parts.append(item)
        return b"".join(parts)
    little = _NUMPY[datatype].newbyteorder("<")
    return array.astype(little, copy=False).tobytes(order="C")


def _fill_typed(
    contents: pb.InferTensorContents, array: np.ndarray, datatype: str, where: str
) -> None:
    field = _CONTENTS_FIELD[datatype]
    assert field is not None  # raw-only types were routed to encode_raw
    if datatype == "BYTES":
        contents.bytes_contents.extend(_bytes_elements(array, where))
        return
    # tolist() yields Python scalars, which protobuf accepts for every field type.
    getattr(contents, field).extend(array.ravel(order="C").tolist())


def _bytes_elements(array: np.ndarray, where: str) -> list[bytes]:
    items: list[bytes] = []
    for k, item in enumerate(array.ravel(order="C").tolist()):
        if isinstance(item, bytes):
            items.append(item)
        elif isinstance(item, str):
            items.append(item.encode("utf-8"))
        else:
            raise TensorError(
                where, f"BYTES element {k} is {type(item).__name__}, not bytes or str"
            )
    return items


# ---------------------------------------------------------------- model contract

"""The Open Inference Protocol's datatypes and tensor descriptions.

Which numpy dtype, ONNX Runtime type, Triton ``DataType`` and ``InferTensorContents``
field each OIP datatype goes with, and the error every tensor check raises.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..inference import grpc_service_pb2 as pb
from ..runtime.model_checks import FieldError

# OIP datatype -> numpy dtype. BYTES is an object array of `bytes`, the same
# representation tritonclient's `as_numpy` returns.
NUMPY_DTYPES: dict[str, np.dtype] = {
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
OIP_DATATYPES: frozenset[str] = frozenset(NUMPY_DTYPES)

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
CONTENTS_FIELD: Mapping[str, str | None] = {
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
FIELD_DTYPE: Mapping[str, np.dtype] = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}

# A raw BYTES element's 4-byte little-endian length, ahead of its bytes.
LEN_PREFIX = struct.Struct("<I")
_DATATYPE_OF: dict[np.dtype, str] = {dtype: name for name, dtype in NUMPY_DTYPES.items()}


class TensorError(FieldError):
    """A tensor in a request (or response) that breaks the protocol or the model's contract."""


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
    """A model input or output as the protocol describes it.

    ``shape`` is what clients are told (ModelMetadata: the batch axis, then ModelConfig's
    ``dims``). ``reshape``, when set, is the shape the model itself takes, Triton's
    ``reshape``: requests may use either form, the model always gets this one.
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    reshape: tuple[int, ...] | None = None


def per_item_scalars(specs: Sequence[TensorSpec], batched: bool) -> tuple[TensorSpec, ...]:
    """Tensors of one scalar per batch item (shape [-1]) in Triton's form: ``dims: [1]`` with
    ``reshape { shape: [] }``, so [-1, 1] to clients. Empty ``dims`` under a batched config
    leave Triton's tools (perf_analyzer) no shape to send."""
    if not batched:
        return tuple(specs)
    return tuple(TensorSpec(s.name, s.datatype, (*s.shape, 1), s.shape) if len(s.shape) == 1 else s
                 for s in specs)


def element_width(datatype: str) -> int:
    """Bytes per element of a fixed-width datatype on the wire (BF16 too, which numpy lacks)."""
    return 2 if datatype == "BF16" else numpy_dtype(datatype).itemsize


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype for an OIP datatype; ValueError for BF16 or unknown names."""
    try:
        return NUMPY_DTYPES[datatype]
    except KeyError:
        raise ValueError(unsupported(datatype)) from None


def datatype_of(array: np.ndarray) -> str:
    """The OIP datatype for a numpy array; str/bytes/object arrays are BYTES."""
    dtype = array.dtype
    known = _DATATYPE_OF.get(dtype)  # every output of every reply asks: answer the usual ones at once
    if known is not None:
        return known
    if dtype.kind in "OSU":
        return "BYTES"
    for name, candidate in NUMPY_DTYPES.items():
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


def unsupported(datatype: str) -> str:
    """Why ``datatype`` cannot be decoded or encoded here."""
    if datatype == "BF16":
        return "BF16 is not supported by this server"
    return f"unknown datatype {datatype!r}; expected one of {', '.join(sorted(OIP_DATATYPES))}"

"""Tensors on the Open Inference Protocol wire (KServe v2 / Triton gRPC).

Converts between `inference.ModelInferRequest`/`ModelInferResponse` tensors and
numpy arrays. Every rejection is a `TensorError` naming the request field at fault,
so the servicer can turn it into INVALID_ARGUMENT with a field violation.

Wire rules (from the protocol's proto):
- raw form: `raw_input_contents[i]` holds input i, flattened row-major,
  little-endian, no padding; BYTES elements are each a 4-byte little-endian
  length followed by the bytes. When raw is used no input may carry `contents`.
- typed form: INT8/INT16/INT32 travel in `int_contents`, UINT8/UINT16/UINT32 in
  `uint_contents`, the rest in the field of their own type. FP16 and BF16 have no
  typed field and must be sent raw.

The pieces live in `oip_datatypes` (datatype tables, `TensorSpec`, `TensorError`),
`oip_decode` (requests to arrays) and `oip_encode` (arrays to responses); this module
gathers their public names in one place.
"""

from __future__ import annotations

from .oip_datatypes import (
    OIP_DATATYPES,
    ONNX_TO_OIP,
    TensorError,
    TensorSpec,
    TensorSpecLike,
    datatype_of,
    numpy_dtype,
    oip_from_onnx,
    per_item_scalars,
    spec_from_onnx,
    triton_data_type,
)
from .oip_decode import DEFAULT_MAX_ELEMENTS, decode_inputs
from .oip_encode import encode_outputs

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
    "per_item_scalars",
    "spec_from_onnx",
    "triton_data_type",
]

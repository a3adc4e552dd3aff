"""Open Inference Protocol request tensors decoded into numpy arrays.

Raw form: ``raw_input_contents[i]`` holds input i, flattened row-major, little-endian,
no padding; a BYTES element is a 4-byte little-endian length followed by its bytes, and
no input may carry ``contents`` as well. Typed form: each datatype in its own
``InferTensorContents`` field (see ``oip_datatypes.CONTENTS_FIELD``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from ..inference import grpc_service_pb2 as pb
from .oip_datatypes import (
    CONTENTS_FIELD,
    FIELD_DTYPE,
    LEN_PREFIX,
    NUMPY_DTYPES,
    OIP_DATATYPES,
    TensorError,
    unsupported,
)

# 64 Mi elements (256 MiB of FP32): far above any museforge model input, far
# below what a lying shape could make us allocate.
DEFAULT_MAX_ELEMENTS = 64 * 1024 * 1024
# A request's inputs may not have zero-size axes either (``oip_limits.header_shapes``): some graphs
# (the music models' recurrent steps) abort ONNX Runtime's process on them, and an empty tensor has
# nothing to compute. The codec itself carries empty tensors.
EMPTY_OR_NEGATIVE = "dimensions must be >= 1 in a request (an empty tensor has nothing to run), got {}"

InputTensor = pb.ModelInferRequest.InferInputTensor


def named_inputs(request: pb.ModelInferRequest) -> Iterator[tuple[int, InputTensor]]:
    """Each input with its index, once its name is present and not repeated.

    The raw form's entry count is checked first. Every reading of a request starts here:
    the header checks (``oip_limits.header_shapes``) and a decoding on its own.
    """
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise TensorError(
            "raw_input_contents",
            f"has {len(raw)} entries for {len(request.inputs)} inputs; "
            "raw form needs exactly one entry per input, in input order",
        )
    seen: set[str] = set()
    for i, tensor in enumerate(request.inputs):
        if not tensor.name:
            raise TensorError(f"inputs[{i}].name", "must not be empty")
        if tensor.name in seen:
            raise TensorError(f"inputs[{i}].name", f"duplicate input name {tensor.name!r}")
        seen.add(tensor.name)
        yield i, tensor


def decode_inputs(
    request: pb.ModelInferRequest, *, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> dict[str, np.ndarray]:
    """Decode every input tensor of a ModelInferRequest, in request order.

    Arrays decoded from raw contents are read-only views over the request's
    bytes (no copy); copy them before writing in place.
    """
    return _decode(request, named_inputs(request), max_elements)


def decode_admitted(
    request: pb.ModelInferRequest, shapes: Sequence[tuple[int, ...]], *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[str, np.ndarray]:
    """``decode_inputs`` for a request whose headers ``oip_limits.header_shapes`` passed:
    its raw entry count and input names were checked there and are not checked again.
    Input i is decoded to ``shapes[i]``, the shape the model takes (a [4, 1] request
    tensor for a reshaped [-1] input comes out [4]), with the same element count."""
    return _decode(request, enumerate(request.inputs), max_elements, shapes)


def _decode(
    request: pb.ModelInferRequest, inputs: Iterable[tuple[int, InputTensor]], max_elements: int,
    shapes: Sequence[tuple[int, ...]] | None = None,
) -> dict[str, np.ndarray]:
    raw = request.raw_input_contents
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in inputs:
        where = f"inputs[{i}]"
        if tensor.datatype not in OIP_DATATYPES:
            raise TensorError(f"{where}.datatype", unsupported(tensor.datatype))
        shape = _checked_shape(tensor.shape if shapes is None else shapes[i], f"{where}.shape",
                               max_elements)
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
    dtype = NUMPY_DTYPES[datatype]
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
        (size,) = LEN_PREFIX.unpack_from(view, pos)
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
    expected_field = CONTENTS_FIELD[datatype]
    present = [fd.name for fd, _ in contents.ListFields()]
    if expected_field is None:
        if count == 0 and not present:
            return np.empty(shape, dtype=NUMPY_DTYPES[datatype])
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
    wide = np.array(values, dtype=FIELD_DTYPE[expected_field])
    target = NUMPY_DTYPES[datatype]
    if target.itemsize < wide.itemsize and count:
        # Narrow types share the 32-bit fields; refuse values that would wrap.
        info = np.iinfo(target)
        if wide.min() < info.min or wide.max() > info.max:
            raise TensorError(field, f"values out of range for {datatype}")
    return wide.astype(target, copy=False).reshape(shape)

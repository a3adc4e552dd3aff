"""numpy arrays encoded as Open Inference Protocol response tensors (raw or typed form)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..inference import grpc_service_pb2 as pb
from .oip_datatypes import CONTENTS_FIELD, LEN_PREFIX, NUMPY_DTYPES, TensorError, datatype_of


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
    use_raw = raw or any(CONTENTS_FIELD[dt] is None for dt in datatypes)

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
            parts.append(LEN_PREFIX.pack(len(item)))
            parts.append(item)
        return b"".join(parts)
    little = NUMPY_DTYPES[datatype].newbyteorder("<")
    return array.astype(little, copy=False).tobytes(order="C")


def _fill_typed(
    contents: pb.InferTensorContents, array: np.ndarray, datatype: str, where: str
) -> None:
    field = CONTENTS_FIELD[datatype]
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

"""Triton's binary tensor data extension on ``POST /v2/models/{name}/infer``.

A request's body may be a JSON header of ``Inference-Header-Content-Length`` bytes followed
by raw tensor bytes: each input with ``"parameters": {"binary_data_size": N}`` takes the next
N bytes, in the inputs' order, and together they take all of them. The bytes are the
tensor flattened row-major, little-endian (BOOL one byte, BYTES each element after its
4-byte little-endian length): exactly gRPC's ``raw_input_contents``, so they are passed on
as such and the service checks them as it checks a gRPC client's.

Outputs asked for as binary (``"binary_data": true`` on the output, or
``"binary_data_output": true`` in the request's parameters for every output not saying
otherwise) come back the same way: the JSON reply with ``binary_data_size`` in their
``parameters`` and no ``data``, their bytes after it, ``Inference-Header-Content-Length``
giving the JSON's length and ``Content-Type: application/octet-stream``, as Triton answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..ascii_numbers import ascii_number
from ..inference import grpc_service_pb2 as pb
from ..server.oip_decode import decode_typed
from ..server.oip_encode import encode_raw
from .json_codec import bad_request, load_json

HEADER = "Inference-Header-Content-Length"
HEADER_KEY = HEADER.lower()  # as the gateway's header table has it
SIZE = "binary_data_size"
OUTPUT_FLAG = "binary_data"
REQUEST_FLAG = "binary_data_output"


def header_length(value: str, body_length: int) -> int:
    """The JSON header's length from the request header: a number within the body."""
    length = ascii_number(value, 20)
    if length is None or not 0 < length <= body_length:
        raise bad_request(HEADER, f"must be the length in bytes of the body's JSON header, 1 to the "
                                  f"body's {body_length} bytes; got {value[:24]!r}")
    return length


class Tail:
    """The body's bytes after the JSON header, handed to the binary inputs in order."""

    def __init__(self, body: bytes | bytearray | None, start: int) -> None:
        self.view = memoryview(body if body is not None else b"")[start:]
        self.offset = 0
        self.present = body is not None  # False: a JSON body, no binary part at all
        self.last = ""  # the last input that took bytes, for a tail longer than they took

    def take(self, size: Any, where: str, name: str) -> bytes:
        field_name = f"{where}.parameters.{SIZE}"
        if not self.present:
            raise bad_request(field_name, f"input {name!r} has binary data, which needs the {HEADER} "
                                          "header and the bytes after the JSON")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad_request(field_name, f"input {name!r}: a non-negative integer is required")
        left = len(self.view) - self.offset
        if size > left:
            raise bad_request(field_name, f"input {name!r} claims {size} bytes of binary data but only "
                                          f"{left} are left in the body")
        data = bytes(self.view[self.offset:self.offset + size])
        self.offset += size
        self.last = field_name
        return data

    def finish(self) -> None:
        """Every byte after the header must belong to an input."""
        left = len(self.view) - self.offset
        if left:
            where = self.last or HEADER
            raise bad_request(where, f"{left} bytes after the JSON header belong to no input: the inputs' "
                                     f"{SIZE} must add up to the binary part's {len(self.view)} bytes")


NO_TAIL = Tail(None, 0)  # a JSON body: an input with binary_data_size is refused (take() keeps no state)


def split_body(raw: bytearray, length: int | None) -> tuple[Any, Tail]:
    """The parsed JSON header and the binary bytes after it (none when ``length`` is None)."""
    if length is None:
        return load_json(raw), NO_TAIL
    return load_json(raw[:length]), Tail(raw, length)


@dataclass
class BinaryOutputs:
    """Which outputs the reply carries as binary data."""

    default: bool = False  # the request's binary_data_output
    named: dict[str, bool] = field(default_factory=dict)  # each output's own binary_data

    def wanted(self, name: str) -> bool:
        return self.named.get(name, self.default)

    def any(self) -> bool:
        return self.default or any(self.named.values())


def output_flag(entry: Mapping[str, Any], where: str) -> bool | None:
    """A requested output's own binary_data, if it says."""
    parameters = entry.get("parameters")
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise bad_request(f"{where}.parameters", "must be a JSON object")
    value = parameters.get(OUTPUT_FLAG)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"{where}.parameters.{OUTPUT_FLAG}", "must be true or false")
    return value


def raw_output(reply: pb.ModelInferResponse, index: int) -> bytes:
    """Output ``index``'s bytes in the binary form, whichever way the service filled the reply."""
    if reply.raw_output_contents:
        return reply.raw_output_contents[index]
    tensor = reply.outputs[index]
    where = f"outputs[{index}]"
    array = decode_typed(tensor.contents, tensor.datatype, tuple(int(d) for d in tensor.shape), where)
    return encode_raw(array, tensor.datatype, where)


def binary_body(header: bytes, chunks: list[bytes]) -> tuple[bytes, int | None]:
    """The reply's body and its JSON header's length, or None when no bytes follow the JSON
    (Triton then answers plain JSON: an empty binary output adds no bytes)."""
    if not any(chunks):
        return header, None
    return b"".join((header, *chunks)), len(header)

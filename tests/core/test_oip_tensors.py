"""Open Inference Protocol tensor coding: round trips, wire layout and every rejection."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from museforge.inference import grpc_service_pb2 as pb
from museforge.server import oip_tensors as oip
from museforge.server.oip_limits import header_shapes

NUMERIC = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
]


def sample(datatype: str) -> np.ndarray:
    """A 2x3 array that hits each type's extremes."""
    dtype = oip.numpy_dtype(datatype)
    if datatype == "BOOL":
        values: list[object] = [True, False, True, True, False, False]
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = [int(info.min), int(info.max), 0, 1, int(info.max) - 1, 7]
    else:
        info_f = np.finfo(dtype)
        values = [float(info_f.min), float(info_f.max), 0.0, -1.5, float("inf"), float("nan")]
    return np.array(values, dtype=dtype).reshape(2, 3)


def sample_bytes() -> np.ndarray:
    values = [b"", b"hello", b"\x00\xffbinary\x00", "grüße".encode(), b"x" * 300, b"z"]
    arr = np.empty(6, dtype=np.object_)
    arr[:] = values
    return arr.reshape(3, 2)


def to_request(
    tensors: list[pb.ModelInferResponse.InferOutputTensor], raw: list[bytes]
) -> pb.ModelInferRequest:
    """Turn encoded outputs into a request and push it through the wire format."""
    request = pb.ModelInferRequest(model_name="m")
    for t in tensors:
        inp = request.inputs.add(name=t.name, datatype=t.datatype, shape=list(t.shape))
        if t.HasField("contents"):
            inp.contents.CopyFrom(t.contents)
    request.raw_input_contents.extend(raw)
    return pb.ModelInferRequest.FromString(request.SerializeToString())


def roundtrip(arrays: dict[str, np.ndarray], *, raw: bool) -> dict[str, np.ndarray]:
    tensors, buffers = oip.encode_outputs(arrays, raw=raw)
    return oip.decode_inputs(to_request(tensors, buffers))


def make_request(
    *inputs: dict[str, object], raw: list[bytes] | None = None
) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="m")
    for spec in inputs:
        request.inputs.add(**spec)
    if raw is not None:
        request.raw_input_contents.extend(raw)
    return request


def fp32_input(
    name: str = "x", shape: tuple[int, ...] = (2,), **extra: object
) -> dict[str, object]:
    return {"name": name, "datatype": "FP32", "shape": list(shape), **extra}


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("datatype", NUMERIC)
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_numeric_roundtrip(datatype: str, raw: bool) -> None:
    original = sample(datatype)
    tensors, buffers = oip.encode_outputs({"t": original}, raw=raw)
    assert tensors[0].datatype == datatype
    assert list(tensors[0].shape) == [2, 3]
    # FP16 has no typed field, so a typed response falls back to raw as a whole.
    assert bool(buffers) == (raw or datatype == "FP16")
    decoded = oip.decode_inputs(to_request(tensors, buffers))["t"]
    assert decoded.dtype == original.dtype
    assert decoded.shape == original.shape
    np.testing.assert_array_equal(decoded, original)


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_bytes_roundtrip(raw: bool) -> None:
    original = sample_bytes()
    decoded = roundtrip({"s": original}, raw=raw)["s"]
    assert decoded.dtype == np.object_
    assert decoded.shape == (3, 2)
    assert decoded.tolist() == original.tolist()


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_str_and_fixed_width_arrays_encode_as_bytes(raw: bool) -> None:
    decoded = roundtrip({"u": np.array(["a", "bé"]), "s": np.array([b"ab", b"c"])}, raw=raw)
    assert decoded["u"].tolist() == [b"a", "bé".encode()]
    assert decoded["s"].tolist() == [b"ab", b"c"]


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_several_inputs_keep_request_order(raw: bool) -> None:
    arrays = {"b": sample("INT64"), "a": sample_bytes(), "c": sample("FP32")}
    decoded = roundtrip(arrays, raw=raw)
    assert list(decoded) == ["b", "a", "c"]
    for name, arr in arrays.items():
        np.testing.assert_array_equal(decoded[name], arr)


def test_mixed_fp16_response_goes_raw_for_every_output() -> None:
    tensors, buffers = oip.encode_outputs({"h": sample("FP16"), "i": sample("INT32")}, raw=False)
    assert len(buffers) == 2
    assert not any(t.HasField("contents") for t in tensors)


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
@pytest.mark.parametrize("datatype", [*NUMERIC, "BYTES"])
def test_zero_element_tensor(datatype: str, raw: bool) -> None:
    empty = np.empty((0, 4), dtype=oip.numpy_dtype(datatype))
    decoded = roundtrip({"e": empty}, raw=raw)["e"]
    assert decoded.shape == (0, 4)
    assert decoded.dtype == empty.dtype


def test_scalar_tensor() -> None:
    decoded = roundtrip({"s": np.array(3.5, dtype=np.float32)}, raw=True)["s"]
    assert decoded.shape == ()
    assert decoded == np.float32(3.5)


def test_non_contiguous_and_big_endian_arrays_encode_correctly() -> None:
    base = np.arange(12, dtype=np.int32).reshape(3, 4)
    big = np.arange(4, dtype=">f4")
    decoded = roundtrip({"t": base.T, "b": big}, raw=True)
    np.testing.assert_array_equal(decoded["t"], base.T)
    np.testing.assert_array_equal(decoded["b"], big)
    assert decoded["b"].dtype == np.dtype(np.float32)


def test_raw_decode_is_zero_copy_and_read_only() -> None:
    decoded = roundtrip({"x": sample("FP32")}, raw=True)["x"]
    assert not decoded.flags.writeable


# ---------------------------------------------------------------- wire layout


def test_raw_layout_is_little_endian_row_major() -> None:
    _, buffers = oip.encode_outputs({"x": np.array([[1, 2], [3, 258]], dtype=np.int32)}, raw=True)
    assert buffers == [struct.pack("<4i", 1, 2, 3, 258)]


def test_raw_bytes_layout_is_u32_length_prefixed() -> None:
    arr = np.array([b"hi", b"", b"abc"], dtype=np.object_)
    _, buffers = oip.encode_outputs({"s": arr}, raw=True)
    assert buffers == [b"\x02\x00\x00\x00hi\x00\x00\x00\x00\x03\x00\x00\x00abc"]


def test_typed_uses_the_protocol_field_for_each_datatype() -> None:
    fields = {
        "BOOL": "bool_contents",
        "UINT8": "uint_contents",
        "UINT16": "uint_contents",
        "UINT32": "uint_contents",
        "UINT64": "uint64_contents",
        "INT8": "int_contents",
        "INT16": "int_contents",
        "INT32": "int_contents",
        "INT64": "int64_contents",
        "FP32": "fp32_contents",
        "FP64": "fp64_contents",
    }
    for datatype, field in fields.items():
        tensors, buffers = oip.encode_outputs({"t": sample(datatype)}, raw=False)
        assert buffers == []
        assert [fd.name for fd, _ in tensors[0].contents.ListFields()] == [field], datatype
    tensors, _ = oip.encode_outputs({"s": sample_bytes()}, raw=False)
    assert list(tensors[0].contents.bytes_contents) == sample_bytes().ravel().tolist()


def test_decodes_hand_built_typed_request() -> None:
    request = make_request(
        {
            "name": "a",
            "datatype": "INT8",
            "shape": [3],
            "contents": {"int_contents": [-128, 0, 127]},
        },
        {
            "name": "b",
            "datatype": "UINT16",
            "shape": [1, 2],
            "contents": {"uint_contents": [0, 65535]},
        },
    )
    decoded = oip.decode_inputs(request)
    np.testing.assert_array_equal(decoded["a"], np.array([-128, 0, 127], dtype=np.int8))
    assert decoded["b"].dtype == np.uint16 and decoded["b"].shape == (1, 2)


# ---------------------------------------------------------------- decode errors


def error_field(request: pb.ModelInferRequest, **kwargs: int) -> str:
    with pytest.raises(oip.TensorError) as info:
        oip.decode_inputs(request, **kwargs)
    assert info.value.field in str(info.value)
    assert info.value.message
    return info.value.field


def test_unknown_datatype() -> None:
    request = make_request({"name": "x", "datatype": "FLOAT", "shape": [1]})
    assert error_field(request) == "inputs[0].datatype"


def test_bf16_is_rejected_with_a_clear_message() -> None:
    request = make_request({"name": "x", "datatype": "BF16", "shape": [1]}, raw=[b"\x00\x00"])
    with pytest.raises(oip.TensorError, match="BF16 is not supported") as info:
        oip.decode_inputs(request)
    assert info.value.field == "inputs[0].datatype"


def test_negative_dim() -> None:
    request = make_request(fp32_input(shape=(-1, 2)), raw=[b""])
    assert error_field(request) == "inputs[0].shape"


def test_shape_over_element_limit() -> None:
    request = make_request(
        fp32_input("a", contents={"fp32_contents": [1.0, 2.0]}),
        fp32_input("b", shape=(1 << 20, 1 << 20)),
    )
    assert error_field(request) == "inputs[1].shape"


def test_custom_element_limit() -> None:
    request = make_request(fp32_input(shape=(4,), contents={"fp32_contents": [0.0] * 4}))
    assert error_field(request, max_elements=3) == "inputs[0].shape"
    assert oip.decode_inputs(request, max_elements=4)["x"].shape == (4,)


def test_huge_dim_next_to_zero_dim() -> None:
    request = make_request(fp32_input(shape=(0, 1 << 62)))
    assert error_field(request) == "inputs[0].shape"


def test_typed_count_mismatch() -> None:
    request = make_request(fp32_input(shape=(2, 2), contents={"fp32_contents": [1.0, 2.0, 3.0]}))
    assert error_field(request) == "inputs[0].contents.fp32_contents"


def test_typed_missing_contents() -> None:
    request = make_request(fp32_input(shape=(2,)))
    assert error_field(request) == "inputs[0].contents.fp32_contents"


def test_typed_wrong_field() -> None:
    request = make_request(fp32_input(shape=(2,), contents={"fp64_contents": [1.0, 2.0]}))
    assert error_field(request) == "inputs[0].contents"


def test_typed_extra_field_next_to_right_one() -> None:
    request = make_request(
        fp32_input(shape=(1,), contents={"fp32_contents": [1.0], "int_contents": [1]})
    )
    assert error_field(request) == "inputs[0].contents"


def test_typed_fp16_must_be_raw() -> None:
    request = make_request(
        {"name": "h", "datatype": "FP16", "shape": [1], "contents": {"fp32_contents": [1.0]}}
    )
    with pytest.raises(oip.TensorError, match="raw_input_contents") as info:
        oip.decode_inputs(request)
    assert info.value.field == "inputs[0].contents"


@pytest.mark.parametrize(
    ("datatype", "field", "value"),
    [
        ("INT8", "int_contents", 128),
        ("INT8", "int_contents", -129),
        ("INT16", "int_contents", 40000),
        ("UINT8", "uint_contents", 256),
        ("UINT16", "uint_contents", 70000),
    ],
)
def test_typed_narrow_value_out_of_range(datatype: str, field: str, value: int) -> None:
    request = make_request(
        {"name": "n", "datatype": datatype, "shape": [2], "contents": {field: [0, value]}}
    )
    assert error_field(request) == f"inputs[0].contents.{field}"


def test_raw_byte_count_mismatch() -> None:
    request = make_request(fp32_input("a"), fp32_input("b"), raw=[b"\x00" * 8, b"\x00" * 7])
    assert error_field(request) == "raw_input_contents[1]"


def test_mixing_raw_and_typed() -> None:
    request = make_request(
        fp32_input("a"),
        fp32_input("b", contents={"fp32_contents": [1.0, 2.0]}),
        raw=[b"\x00" * 8, b"\x00" * 8],
    )
    assert error_field(request) == "inputs[1].contents"


def test_raw_entry_count_differs_from_inputs() -> None:
    request = make_request(fp32_input("a"), fp32_input("b"), raw=[b"\x00" * 8])
    assert error_field(request) == "raw_input_contents"


def test_duplicate_input_names() -> None:
    request = make_request(fp32_input("x"), fp32_input("x"), raw=[b"\x00" * 8] * 2)
    assert error_field(request) == "inputs[1].name"


def test_empty_input_name() -> None:
    request = make_request(fp32_input(""), raw=[b"\x00" * 8])
    assert error_field(request) == "inputs[0].name"


def test_raw_bool_must_be_zero_or_one() -> None:
    request = make_request({"name": "b", "datatype": "BOOL", "shape": [2]}, raw=[b"\x01\x02"])
    assert error_field(request) == "raw_input_contents[0]"


@pytest.mark.parametrize(
    "buf",
    [
        b"\x02\x00\x00\x00hi\x01\x00",  # second length prefix cut short
        b"\x02\x00\x00\x00hi\x09\x00\x00\x00abc",  # second element overruns
        b"\x02\x00\x00\x00hi\x01\x00\x00\x00ab",  # one byte left over
        b"\x02\x00\x00\x00hi",  # one element for a shape of two
    ],
    ids=["truncated-prefix", "overrun", "leftover", "too-few"],
)
def test_malformed_raw_bytes(buf: bytes) -> None:
    request = make_request({"name": "s", "datatype": "BYTES", "shape": [2]}, raw=[buf])
    assert error_field(request) == "raw_input_contents[0]"


# ---------------------------------------------------------------- encode errors


def test_encode_rejects_dtype_without_datatype() -> None:
    with pytest.raises(oip.TensorError) as info:
        oip.encode_outputs({"ok": sample("FP32"), "c": np.zeros(2, dtype=np.complex64)}, raw=True)
    assert info.value.field == "outputs[1].datatype"


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_encode_rejects_non_bytes_objects(raw: bool) -> None:
    arr = np.array([b"a", 3], dtype=np.object_)
    with pytest.raises(oip.TensorError) as info:
        oip.encode_outputs({"s": arr}, raw=raw)
    assert info.value.field == "outputs[0]"


# ---------------------------------------------------------------- model contract

SPECS = [
    oip.TensorSpec("image", "FP32", (-1, 3, 8, 8)),
    oip.TensorSpec("seed", "INT64", (1,)),
]


def good_inputs() -> dict[str, np.ndarray]:
    return {
        "image": np.zeros((5, 3, 8, 8), dtype=np.float32),
        "seed": np.array([42], dtype=np.int64),
    }


def check_contract(arrays: dict[str, np.ndarray], specs: list[oip.TensorSpecLike]) -> None:
    """What the server checks before decoding: the request's headers against the model's inputs."""
    header_shapes(to_request(*oip.encode_outputs(arrays, raw=True)), specs)


def contract_field(arrays: dict[str, np.ndarray], specs: list[oip.TensorSpecLike]) -> str:
    with pytest.raises(oip.TensorError) as info:
        check_contract(arrays, specs)
    return info.value.field


def test_contract_accepts_any_size_on_dynamic_dims() -> None:
    check_contract(good_inputs(), SPECS)
    arrays = good_inputs()
    arrays["image"] = np.zeros((1, 3, 8, 8), dtype=np.float32)
    check_contract(arrays, SPECS)


def test_contract_accepts_protocol_metadata_messages() -> None:
    meta = pb.ModelMetadataResponse(
        inputs=[{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in SPECS]
    )
    check_contract(good_inputs(), list(meta.inputs))


def test_contract_unknown_input() -> None:
    arrays = {**good_inputs(), "extra": np.zeros(1, dtype=np.float32)}
    assert contract_field(arrays, SPECS) == "inputs[2].name"


def test_contract_missing_input() -> None:
    arrays = good_inputs()
    del arrays["seed"]
    assert contract_field(arrays, SPECS) == "inputs"


def test_contract_datatype_mismatch() -> None:
    arrays = good_inputs()
    arrays["seed"] = np.array([42], dtype=np.int32)
    assert contract_field(arrays, SPECS) == "inputs[1].datatype"


def test_contract_rank_mismatch() -> None:
    arrays = good_inputs()
    arrays["image"] = np.zeros((3, 8, 8), dtype=np.float32)
    assert contract_field(arrays, SPECS) == "inputs[0].shape"


def test_contract_fixed_dim_mismatch() -> None:
    arrays = good_inputs()
    arrays["image"] = np.zeros((5, 4, 8, 8), dtype=np.float32)
    assert contract_field(arrays, SPECS) == "inputs[0].shape"


def test_contract_bytes_input() -> None:
    specs: list[oip.TensorSpecLike] = [oip.TensorSpec("prompt", "BYTES", (-1,))]
    check_contract({"prompt": sample_bytes().ravel()}, specs)


# ---------------------------------------------------------------- type maps


def test_triton_data_type_numbers_match_model_config_proto() -> None:
    expected = {
        "BOOL": 1,
        "UINT8": 2,
        "UINT16": 3,
        "UINT32": 4,
        "UINT64": 5,
        "INT8": 6,
        "INT16": 7,
        "INT32": 8,
        "INT64": 9,
        "FP16": 10,
        "FP32": 11,
        "FP64": 12,
        "BYTES": 13,
        "BF16": 14,
    }
    assert {dt: oip.triton_data_type(dt) for dt in expected} == expected
    assert pb.DataType.Name(oip.triton_data_type("BYTES")) == "TYPE_STRING"
    with pytest.raises(ValueError):
        oip.triton_data_type("FLOAT")


def test_onnx_type_mapping() -> None:
    assert oip.oip_from_onnx("tensor(float)") == "FP32"
    assert oip.oip_from_onnx("tensor(int64)") == "INT64"
    assert oip.oip_from_onnx("tensor(string)") == "BYTES"
    assert oip.oip_from_onnx("tensor(float16)") == "FP16"
    with pytest.raises(ValueError):
        oip.oip_from_onnx("seq(tensor(float))")
    # Every supported OIP datatype is reachable from some ONNX type.
    assert set(oip.ONNX_TO_OIP.values()) >= oip.OIP_DATATYPES


def test_spec_from_onnx_turns_symbolic_axes_into_minus_one() -> None:
    spec = oip.spec_from_onnx("x", "tensor(float)", ["batch", 3, None, 8])
    assert spec == oip.TensorSpec("x", "FP32", (-1, 3, -1, 8))


def test_numpy_dtype_and_datatype_of_agree() -> None:
    for datatype in [*NUMERIC, "BYTES"]:
        dtype = oip.numpy_dtype(datatype)
        assert oip.datatype_of(np.empty(0, dtype=dtype)) == datatype
    with pytest.raises(ValueError, match="BF16"):
        oip.numpy_dtype("BF16")
    with pytest.raises(ValueError):
        oip.datatype_of(np.zeros(1, dtype=np.complex128))

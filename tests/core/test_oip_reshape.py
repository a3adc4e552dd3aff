"""Per-item scalars in Triton's form: ``dims: [1]`` with ``reshape { shape: [] }``.

Clients see [-1, 1] and may send [B, 1] or [B]; the model always gets [B]. These check the
pieces on their own; test_oip_service checks them against the served models.
"""

from __future__ import annotations

import numpy as np
import pytest

from museforge.inference import grpc_service_pb2 as pb
from museforge.server import oip_tensors as oip
from museforge.server.oip_decode import decode_admitted
from museforge.server.oip_limits import header_shapes

RESHAPED: list[oip.TensorSpecLike] = list(oip.per_item_scalars(
    [oip.TensorSpec("image", "FP32", (-1, 3, 8, 8)), oip.TensorSpec("label", "INT64", (-1,))], batched=True))


def request_of(arrays: dict[str, np.ndarray], *, raw: bool = True) -> pb.ModelInferRequest:
    """A ModelInferRequest carrying ``arrays``, raw or typed, as a client sends it."""
    tensors, buffers = oip.encode_outputs(arrays, raw=raw)
    request = pb.ModelInferRequest(model_name="m")
    for tensor in tensors:
        added = request.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=list(tensor.shape))
        if tensor.HasField("contents"):
            added.contents.CopyFrom(tensor.contents)
    request.raw_input_contents.extend(buffers)
    return pb.ModelInferRequest.FromString(request.SerializeToString())


def test_per_item_scalars_take_tritons_reshape_form_when_batched() -> None:
    specs = [oip.TensorSpec("z", "FP32", (-1, 100)), oip.TensorSpec("label", "INT64", (-1,))]
    assert oip.per_item_scalars(specs, batched=True) == (
        oip.TensorSpec("z", "FP32", (-1, 100)), oip.TensorSpec("label", "INT64", (-1, 1), (-1,)))
    assert oip.per_item_scalars(specs, batched=False) == tuple(specs)


@pytest.mark.parametrize("label_shape", [(4,), (4, 1)], ids=["[B]", "[B,1]"])
def test_header_checks_take_both_forms_of_a_reshaped_input(label_shape: tuple[int, ...]) -> None:
    arrays: dict[str, np.ndarray] = {"image": np.zeros((4, 3, 8, 8), np.float32),
                                     "label": np.zeros(label_shape, np.int64)}
    shapes = header_shapes(request_of(arrays), RESHAPED)
    assert shapes == {"image": (4, 3, 8, 8), "label": (4,)}  # what the model takes, either way


@pytest.mark.parametrize("label_shape", [(4, 2), (4, 1, 1), ()])
def test_header_checks_refuse_other_shapes_of_a_reshaped_input(label_shape: tuple[int, ...]) -> None:
    arrays: dict[str, np.ndarray] = {"image": np.zeros((4, 3, 8, 8), np.float32),
                                     "label": np.zeros(label_shape, np.int64)}
    with pytest.raises(oip.TensorError) as info:
        header_shapes(request_of(arrays), RESHAPED)
    assert info.value.field == "inputs[1].shape"
    assert "'label'" in info.value.message and "[-1, 1] or [-1]" in info.value.message


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_decoding_gives_the_shapes_the_model_takes(raw: bool) -> None:
    label = np.arange(4, dtype=np.int64).reshape(4, 1)
    [(name, array)] = decode_admitted(request_of({"label": label}, raw=raw), [(4,)]).items()
    assert name == "label" and array.shape == (4,)
    np.testing.assert_array_equal(array, label.ravel())

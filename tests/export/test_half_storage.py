"""Weights stored as float16: half the bytes, the same graph computing in float32 (no torch)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from museforge.export.convert import max_ir_version
from museforge.export.half_storage import HALF_SUFFIX, half_stored


def _graph(weight: np.ndarray, bias: np.ndarray, *, bias_is_input: bool = False) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", weight.shape[0]])]
    if bias_is_input:  # an initialiser a caller may replace
        inputs.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, [weight.shape[1]]))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", weight.shape[1]])],
                              [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = max_ir_version()
    return model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["y"], {"x": x})[0])


def test_large_weights_are_stored_half_and_the_graph_computes_as_before() -> None:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((64, 128)).astype(np.float32)
    bias = rng.standard_normal(128).astype(np.float32)
    whole = _graph(weight, bias)
    half, storage = half_stored(whole)
    assert storage.converted == 1
    assert storage.bytes_before == weight.nbytes + bias.nbytes
    assert storage.bytes_after == weight.nbytes // 2 + bias.nbytes
    stored = {t.name: numpy_helper.to_array(t) for t in half.graph.initializer}
    assert stored["w" + HALF_SUFFIX].dtype == np.float16 and "w" not in stored
    assert np.array_equal(stored["b"], bias)  # small tensors stay as they were
    assert half.graph.node[0].op_type == "Cast" and half.graph.node[0].output == ["w"]
    assert len(half.SerializeToString()) < 0.6 * len(whole.SerializeToString())
    x = rng.standard_normal((3, 64)).astype(np.float32)
    want = x @ weight.astype(np.float16).astype(np.float32) + bias  # only the weights are rounded
    assert np.allclose(_run(half, x), want, atol=1e-4)
    assert not np.array_equal(_run(half, x), _run(whole, x))


def test_what_it_leaves_alone_and_what_it_refuses() -> None:
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((64, 128)).astype(np.float32)
    bias = rng.standard_normal(128).astype(np.float32)
    # Below the threshold nothing changes; an initialiser that is also an input stays float32.
    assert half_stored(_graph(weight, bias), min_elements=64 * 128 + 1)[1].converted == 0
    half, storage = half_stored(_graph(weight, bias, bias_is_input=True), min_elements=1)
    assert storage.converted == 1 and storage.min_elements == 1  # the record says the threshold used
    assert {t.name for t in half.graph.initializer} == {"w" + HALF_SUFFIX, "b"}
    with pytest.raises(ValueError, match="already stored as float16"):
        half_stored(half)
    with pytest.raises(ValueError, match="min_elements must be 1 or more"):
        half_stored(_graph(weight, bias), min_elements=0)
    weight[3, 5] = 1e6  # float16 ends at 65,504: the file would hold an infinity
    with pytest.raises(ValueError, match="w holds values beyond float16's range"):
        half_stored(_graph(weight, bias))

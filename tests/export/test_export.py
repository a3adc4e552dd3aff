"""The export path: declarative specs, IR pinning, parity validation and the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from museforge.export.convert import export_onnx, max_ir_version
from museforge.export.spec import ExportSpec, TensorSpec
from museforge.export.validate import (
    OutputNamesMismatch,
    OutputShapeMismatch,
    OutputValuesMismatch,
    validate_export,
)

SPEC = ExportSpec(
    inputs=(TensorSpec("x", "float32", ("batch", 4)), TensorSpec("k", "int64", ("batch",))),
    outputs=(TensorSpec("y", "float32", ("batch", 3)),),
    rtol=1e-4, atol=1e-5,
)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 3)
        self.table = nn.Embedding(5, 3)

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x) + self.table(k))


def feeds(batches: tuple[int, ...] = (1, 4, 9)) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [SPEC.random_inputs(rng, {"batch": b}, int_high=5) for b in batches]


def test_names_and_dynamic_axes_come_from_the_spec() -> None:
    assert SPEC.input_names == ["x", "k"] and SPEC.output_names == ["y"]
    assert SPEC.dynamic_axes == {"x": {0: "batch"}, "k": {0: "batch"}, "y": {0: "batch"}}


def test_export_pins_ir_version_and_keeps_dynamic_batch() -> None:
    model = export_onnx(Tiny(), SPEC, feeds((2,))[0])
    assert model.ir_version <= max_ir_version()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x", "k"]
    assert session.get_inputs()[0].shape[0] == "batch"
    report = validate_export(Tiny(), model, SPEC, feeds())
    assert report.batch_sizes == (1, 4, 9) and report.max_abs_diff["y"] < 1e-5


def test_max_ir_version_is_what_the_runtime_really_loads() -> None:
    ir = max_ir_version()
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["a"], ["b"])], "g",
        [onnx.helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, [1])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    model.ir_version = ir
    ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    if ir < onnx.IR_VERSION:
        model.ir_version = ir + 1
        with pytest.raises(Exception, match="IR version"):
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_value_mismatch_is_a_specific_error() -> None:
    model = export_onnx(Tiny(), SPEC, feeds((2,))[0])
    drifted = Tiny()
    with torch.no_grad():
        drifted.linear.bias.add_(0.1)
    with pytest.raises(OutputValuesMismatch, match="exceeds"):
        validate_export(drifted, model, SPEC, feeds())


def test_shape_mismatch_is_a_specific_error() -> None:
    class Wider(Tiny):
        def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            return torch.cat([super().forward(x, k)] * 2, dim=1)

    model = export_onnx(Tiny(), SPEC, feeds((2,))[0])
    with pytest.raises(OutputShapeMismatch):
        validate_export(Wider(), model, SPEC, feeds())


def test_output_name_mismatch_is_a_specific_error() -> None:
    model = export_onnx(Tiny(), SPEC, feeds((2,))[0])
    renamed = ExportSpec(inputs=SPEC.inputs, outputs=(TensorSpec("z", "float32", ("batch", 3)),))
    with pytest.raises(OutputNamesMismatch):
        validate_export(Tiny(), model, renamed, feeds())


def test_a_model_and_its_companion_go_in_together_or_the_old_pair_stays(tmp_path: Path) -> None:
    from museforge.export.convert import install, stage_version
    from museforge.runtime.manifest import Manifest, TensorInfo

    graph = export_onnx(Tiny(), SPEC, feeds((2,))[0])

    def manifest(name: str) -> Manifest:
        inputs = [TensorInfo(name="x", dtype="float32", shape=["batch", 4]),
                  TensorInfo(name="k", dtype="int64", shape=["batch"])]
        outputs = [TensorInfo(name="y", dtype="float32", shape=["batch", 3])]
        return Manifest(name=name, version=1, inputs=inputs, outputs=outputs, opset=17, ir_version=8,
                        sha256="")

    for name in ("encoder", "main"):
        (tmp_path / name / "1").mkdir(parents=True)
        (tmp_path / name / "1" / "model.onnx").write_bytes(b"the old " + name.encode())
    staged = [stage_version(graph, manifest(name), tmp_path / name, 1) for name in ("encoder", "main")]
    staged[1].staging.rename(tmp_path / "gone")  # the second swap fails (as a Ctrl-C there would)
    with pytest.raises(FileNotFoundError):
        install(staged)
    for name in ("encoder", "main"):  # both as they were, nothing left beside them
        assert (tmp_path / name / "1" / "model.onnx").read_bytes() == b"the old " + name.encode()
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["1"]

    staged = [stage_version(graph, manifest(name), tmp_path / name, 1) for name in ("encoder", "main")]
    install(staged)
    for name in ("encoder", "main"):
        assert Manifest.read(tmp_path / name / "1").name == name
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["1"]

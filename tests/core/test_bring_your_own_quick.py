"""Bring your own ONNX: a file exported by a throwaway torch script is added with `museforge models
add`, served over OIP without a plugin (at start, and at once on a running server), and answers as
ONNX Runtime does in-process. Files that cannot serve are refused with the reason, writing nothing."""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from museforge.cli.main import main as cli
from museforge.export.convert import max_ir_version
from museforge.inference import grpc_service_pb2 as pb
from museforge.inference import grpc_service_pb2_grpc as pb_grpc
from museforge.runtime.manifest import Manifest
from tests.servers import ServerThread, inline_engine

NAME = "studio.tint"


class Tint(torch.nn.Module):
    """A studio's small image model: a 3x3 convolution and a per-image mean."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.sigmoid(self.conv(image))
        return out, out.mean(dim=(1, 2, 3))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is flagged as legacy; it is still there
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Tint().eval(), (torch.rand(1, 3, 16, 16),), buffer,  # type: ignore[arg-type]
                          input_names=["image"],
                          output_names=["tinted", "brightness"], opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        "tinted": {0: "batch", 2: "height", 3: "width"},
                                        "brightness": {0: "batch"}})
    model = onnx.load_from_string(buffer.getvalue())
    model.ir_version = min(model.ir_version, max_ir_version())
    path = tmp_path_factory.mktemp("studio") / "tint.onnx"
    onnx.save(model, str(path))
    return path


def add(*args: str) -> int:
    return cli(["models", "add", *args])


def served(repository: Path) -> ServerThread:
    return ServerThread(engine=inline_engine(model_repository=str(repository)))


@pytest.fixture
def oip_of(tmp_path: Path) -> Iterator[tuple[Path, pb_grpc.GRPCInferenceServiceStub]]:
    repository = tmp_path / "repository"
    with served(repository) as server, grpc.insecure_channel(server.address) as channel:
        yield repository, pb_grpc.GRPCInferenceServiceStub(channel)


def infer(oip: pb_grpc.GRPCInferenceServiceStub, image: np.ndarray) -> dict[str, np.ndarray]:
    reply = oip.ModelInfer(pb.ModelInferRequest(
        model_name=NAME, inputs=[pb.ModelInferRequest.InferInputTensor(
            name="image", datatype="FP32", shape=list(image.shape))],
        raw_input_contents=[image.tobytes()]))
    return {t.name: np.frombuffer(raw, np.float32).reshape(t.shape)
            for t, raw in zip(reply.outputs, reply.raw_output_contents, strict=True)}


def test_an_added_model_is_served_at_start_and_answers_as_onnx_runtime(
        exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repository"
    assert add(str(exported), "--name", NAME, "--repository", str(repository)) == 0
    said = capsys.readouterr().out
    assert f"added {NAME} version 1" in said and "dynamic batch: yes" in said
    manifest = Manifest.read(repository / NAME / "1")
    umask = os.umask(0o022)
    os.umask(umask)
    assert (repository / NAME / "1").stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
    assert [(t.name, t.dtype, t.shape) for t in manifest.inputs] == [
        ("image", "float32", ["batch", 3, "height", "width"])]
    assert [t.name for t in manifest.outputs] == ["tinted", "brightness"]
    assert manifest.opset == 17 and 0 < manifest.ir_version <= max_ir_version()
    assert manifest.model_extra is not None
    assert manifest.model_extra["imported"]["from"] == str(exported.resolve())

    images = np.random.default_rng(0).random((4, 3, 24, 20), dtype=np.float32)
    expected = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"]).run(
        None, {"image": images})
    with served(repository) as server, grpc.insecure_channel(server.address) as channel:
        oip = pb_grpc.GRPCInferenceServiceStub(channel)
        for batch in (images[:1], images):  # batch 1 and batch 4
            got = infer(oip, batch)
            np.testing.assert_allclose(got["tinted"], expected[0][:len(batch)], rtol=1e-5, atol=1e-6)
            # A per-item scalar is [B, 1] on the wire, as Triton's dims [1] + reshape [] say.
            assert got["brightness"].shape == (len(batch), 1)
            np.testing.assert_allclose(got["brightness"][:, 0], expected[1][:len(batch)], rtol=1e-5,
                                       atol=1e-6)
        config = oip.ModelConfig(pb.ModelConfigRequest(name=NAME)).config
        assert config.max_batch_size > 0 and list(config.input[0].dims) == [3, -1, -1]
        stats = oip.ModelStatistics(pb.ModelStatisticsRequest(name=NAME)).model_stats[0]
        assert stats.inference_count == 5 and stats.version == "1"


def test_added_to_a_running_server_it_serves_at_once(
        exported: Path, oip_of: tuple[Path, pb_grpc.GRPCInferenceServiceStub]) -> None:
    repository, oip = oip_of
    with pytest.raises(grpc.RpcError) as before:
        infer(oip, np.zeros((1, 3, 8, 8), np.float32))
    assert before.value.code() == grpc.StatusCode.NOT_FOUND
    assert add(str(exported), "--name", NAME, "--repository", str(repository)) == 0
    oip.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=NAME))
    index = oip.RepositoryIndex(pb.RepositoryIndexRequest()).models
    assert [(m.name, m.version, m.state) for m in index] == [(NAME, "1", "READY")]
    assert infer(oip, np.zeros((2, 3, 8, 8), np.float32))["tinted"].shape == (2, 3, 8, 8)

    assert add(str(exported), "--name", NAME, "--repository", str(repository)) == 0  # version 2
    oip.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=NAME))
    assert [m.version for m in oip.RepositoryIndex(pb.RepositoryIndexRequest()).models] == ["2"]


def test_a_missing_name_in_the_repository_is_not_found_naming_it(
        oip_of: tuple[Path, pb_grpc.GRPCInferenceServiceStub]) -> None:
    repository, oip = oip_of
    with pytest.raises(grpc.RpcError) as info:
        oip.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="studio.nothing"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"the model repository ({repository}) a directory of that name" in str(info.value.details())


def string_model(path: Path) -> Path:
    graph = helper.make_graph([helper.make_node("Identity", ["text"], ["same"])], "g",
                              [helper.make_tensor_value_info("text", TensorProto.STRING, ["n"])],
                              [helper.make_tensor_value_info("same", TensorProto.STRING, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, max_ir_version())
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: (d / "x.onnx").write_bytes(b"\x89PNG\r\n\x1a\n not a graph") and d / "x.onnx",
     "not an ONNX model"),
    (lambda d: string_model(d / "s.onnx"), "input 'text' is tensor(string): museforge serves numeric"),
    (lambda d: Path("/dev/zero"), "not a regular file"),  # read without end before
])
def test_a_file_that_cannot_serve_is_refused_and_nothing_is_written(
        make: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repository"
    source = make(tmp_path)  # type: ignore[operator]
    assert add(str(source), "--name", NAME, "--repository", str(repository)) == 1
    assert message in capsys.readouterr().err
    assert not (repository / NAME).exists() or not any((repository / NAME).iterdir())


def test_a_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repository"
    assert add(str(tmp_path / "absent.onnx"), "--name", NAME, "--repository", str(repository)) == 2
    assert "no such file" in capsys.readouterr().err and not repository.exists()


def test_names_and_versions_are_checked_before_anything_is_written(
        exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repository"
    assert add(str(exported), "--name", "../escape", "--repository", str(repository)) == 1
    assert "use letters, digits" in capsys.readouterr().err and not repository.exists()
    assert add(str(exported), "--name", NAME, "--repository", str(repository), "--version", "3",
               "--json") == 0
    assert json.loads(capsys.readouterr().out)["version"] == 3
    assert add(str(exported), "--name", NAME, "--repository", str(repository), "--version", "3") == 1
    assert "never overwritten; choose another (the next free one is 4)" in capsys.readouterr().err
    assert sorted(p.name for p in (repository / NAME).iterdir()) == ["3"]


def test_a_plugins_model_name_is_refused(exported: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    # The plugin's own files serve under its name: an added version there would never be used.
    repository = tmp_path / "repository"
    assert add(str(exported), "--name", "image.digits", "--repository", str(repository)) == 1
    assert "that is a model of plugin image" in capsys.readouterr().err and not repository.exists()


def test_add_with_load_serves_the_new_version_at_once(exported: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repository"
    with served(repository) as server, grpc.insecure_channel(server.address) as channel:
        oip = pb_grpc.GRPCInferenceServiceStub(channel)
        for version in ("1", "2"):  # new to the server, then a new version of a model it serves
            assert add(str(exported), "--name", NAME, "--repository", str(repository), "--load",
                       "--server", server.address) == 0
            assert "READY" in capsys.readouterr().out
            index = oip.RepositoryIndex(pb.RepositoryIndexRequest()).models
            assert [(m.name, m.version, m.state) for m in index] == [(NAME, version, "READY")]
            assert infer(oip, np.zeros((1, 3, 8, 8), np.float32))["tinted"].shape == (1, 3, 8, 8)


def cumulative_model(path: Path) -> Path:
    """A graph whose rows depend on each other: a running sum down the first (batch) axis."""
    axis = helper.make_tensor("axis", TensorProto.INT64, [], [0])
    graph = helper.make_graph(
        [helper.make_node("CumSum", ["x", "axis"], ["y"])], "running",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], initializer=[axis])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(8, max_ir_version())
    onnx.save(model, str(path))
    return path


def test_rows_that_depend_on_each_other_are_never_merged(
        exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repository"
    assert add(str(exported), "--name", NAME, "--repository", str(repository)) == 0
    assert "dynamic batch: yes;" in capsys.readouterr().out  # tried, and each row is its own
    assert Manifest.read(repository / NAME / "1").batching is None
    source = cumulative_model(tmp_path / "running.onnx")
    assert add(str(source), "--name", "studio.running", "--repository", str(repository)) == 0
    assert "requests are never merged" in capsys.readouterr().out
    assert Manifest.read(repository / "studio.running" / "1").batching is False
    # Served with a long queue window, concurrent requests would share a run were they merged:
    # each caller must get its own row's sum, not one that adds another caller's numbers.
    engine = inline_engine(model_repository=str(repository), max_queue_delay_us=300_000)
    with ServerThread(engine=engine) as server, grpc.insecure_channel(server.address) as channel:
        oip = pb_grpc.GRPCInferenceServiceStub(channel)
        rows = [np.full((1, 2), i + 1, np.float32) for i in range(6)]
        requests = [pb.ModelInferRequest(model_name="studio.running", inputs=[
            pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 2])],
            raw_input_contents=[row.tobytes()]) for row in rows]
        futures = [oip.ModelInfer.future(request, timeout=60) for request in requests]
        answers = [np.frombuffer(f.result().raw_output_contents[0], np.float32) for f in futures]
    for row, answer in zip(rows, answers, strict=True):
        np.testing.assert_array_equal(answer, row.ravel())

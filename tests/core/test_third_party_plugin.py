"""A real third-party plugin distribution: built, installed, discovered, served."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from museforge.client import Client
from tests.servers import ServeProcess

PLUGIN_MODULE = '''
"""A studio's plugin: stripes whose contrast an ONNX model computes."""
from pathlib import Path
import numpy as np
from pydantic import BaseModel, Field
import museforge

MODELS = Path(__file__).parent / "models" / "contrast"


class Params(BaseModel):
    width: int = Field(16, ge=4, le=64)


def generate(ctx, params, seed, count):
    rng = np.random.default_rng(seed)
    for i in range(count):
        x = rng.random((1, params.width), dtype=np.float32)
        y = ctx.infer("studio.contrast", {"x": x})["y"]
        yield museforge.Media("image", np.repeat(y, 8, axis=0), i)


@museforge.hookimpl
def register_generators(register):
    register(museforge.Generator(
        name="studio.stripes", modality="image", parameters=Params, generate=generate,
        formats=("png",), models=(museforge.ModelSource("studio.contrast", MODELS),),
    ))
'''


def write_distribution(root: Path) -> None:
    package = root / "studio_stripes"
    version_dir = package / "models" / "contrast" / "1"
    version_dir.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN_MODULE)
    # A one-node model (y = 1 - x), exported with an IR version every onnxruntime reads.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "width"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "width"])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    graph = helper.make_graph([helper.make_node("Sub", ["one", "x"], ["y"])], "c", [x], [y], [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    (version_dir / "model.onnx").write_bytes(data)
    (version_dir / "manifest.json").write_text(json.dumps({
        "name": "studio.contrast", "version": 1, "opset": 17, "ir_version": 8,
        "sha256": hashlib.sha256(data).hexdigest(),
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", "width"]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", "width"]}],
    }))
    (root / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "studio-stripes"
        version = "2.3.4"
        dependencies = ["museforge"]

        [project.entry-points.museforge]
        stripes = "studio_stripes"

        [tool.setuptools]
        packages = ["studio_stripes"]

        [tool.setuptools.package-data]
        studio_stripes = ["models/*/*/*"]
    """))


def test_installed_distribution_is_listed_and_callable(tmp_path: Path) -> None:
    source, target = tmp_path / "src", tmp_path / "site"
    source.mkdir()
    write_distribution(source)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
         "--target", str(target), str(source)],
        check=True, timeout=300, capture_output=True,
    )
    assert onnx.load(str(target / "studio_stripes/models/contrast/1/model.onnx"))
    env = {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    with ServeProcess(env=env) as server, Client(server.address, timeout=60) as client:
        plugins = {p.name: p for p in client.plugins()}
        assert plugins["stripes"].version == "2.3.4"
        assert plugins["stripes"].source == "entrypoint:studio-stripes"
        assert plugins["stripes"].generators == ["studio.stripes"]
        assert "image" in plugins  # the built-in plugin still serves beside it
        [info] = [g for g in client.generators() if g.name == "studio.stripes"]
        assert info.available and info.models[0].provider == "CPUExecutionProvider"
        reply = client.generate("studio.stripes", {"width": 8}, seed=4, count=2)
        assert len(reply.artifacts) == 2
        from io import BytesIO

        from PIL import Image
        pixels = np.asarray(Image.open(BytesIO(reply.artifacts[0].data)))
        expected = 1.0 - np.random.default_rng(4).random((1, 8), dtype=np.float32)
        assert pixels.shape == (8, 8)
        assert np.allclose(pixels[0] / 255.0, expected[0], atol=1 / 255 + 1e-6)

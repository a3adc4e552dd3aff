"""Packaging: one `museforge` namespace, models inside the wheel, generated code up to date."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_proto_code_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_protos.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "run scripts/generate_protos.py: " + result.stderr


def test_wheel_holds_only_the_museforge_namespace_and_the_models(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(tmp_path), str(ROOT)],
        check=True, timeout=300, capture_output=True,
    )
    [wheel] = tmp_path.glob("museforge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"museforge", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1]
                   + ".dist-info"}
    for expected in ("museforge/export/pipeline.py", "museforge/plugins/image/digits.py",
                     "museforge/v1/museforge_pb2.py", "museforge/inference/grpc_service_pb2.py",
                     "museforge/plugins/image/models/digits/1/model.onnx",
                     "museforge/plugins/image/models/digits/1/manifest.json",
                     "museforge/plugins/music/models/melody/1/model.onnx",
                     "museforge/plugins/music/data/melodies.npz",
                     "museforge/plugins/mesh/models/props/1/model.onnx",
                     "museforge/plugins/mesh/models/props_encoder/1/manifest.json",
                     "museforge/export/plugin_template/model/model.onnx",
                     "museforge/export/plugin_template/package/generator.py.tmpl",
                     "museforge/export/plugin_template/tests/test_plugin.py.tmpl",
                     "museforge/export/fit.py", "museforge/export/gan.py",
                     "museforge/plugins/effect/photo_data.py", "museforge/plugins/image/face_data.py"):
        assert expected in names
    # The export kit holds generic machinery only: each plugin ships its own data sets.
    assert not [n for n in names if n.startswith("museforge/export/") and n.endswith("_data.py")]
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[museforge]" in entry_points and "image = museforge.plugins.image" in entry_points
    assert "music = museforge.plugins.music" in entry_points
    assert "mesh = museforge.plugins.mesh" in entry_points

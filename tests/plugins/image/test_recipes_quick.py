"""Every image recipe runs end to end in quick mode: train, export, validate, evaluate."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from museforge.runtime.manifest import Manifest, sha256_of


@pytest.mark.parametrize("recipe", ["image.faces", "image.texture", "image.tiles", "image.icons"])
def test_quick_export(recipe: str, tmp_path: Path) -> None:
    out = tmp_path / recipe
    result = subprocess.run(
        [sys.executable, "-m", "museforge.cli", "export", recipe, "--quick", "--output", str(out),
         "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = Manifest.read(out / "1")
    assert manifest.name == recipe and manifest.quick
    assert manifest.sha256 == sha256_of(out / "1" / "model.onnx")
    assert manifest.metrics and manifest.dataset["fingerprint"]
    # The release of the package the data came in, as for every shipped model.
    assert manifest.training_data and all(d.version for d in manifest.training_data)
    if recipe in ("image.faces", "image.texture"):  # pictures inside the installed scikit-image
        assert {d.version for d in manifest.training_data} == {metadata.version("scikit-image")}
    assert (out / "1" / "model.onnx").stat().st_size < 8_000_000

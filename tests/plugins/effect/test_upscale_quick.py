"""The upscale recipe runs end to end in quick mode: train, export, validate, evaluate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from museforge.manifest import Manifest, sha256_of


def test_quick_export_x2(tmp_path: Path) -> None:
    out = tmp_path / "upscale"
    result = subprocess.run(
        [sys.executable, "-m", "museforge.cli", "export", "effect.upscale_x2", "--quick", "--output",
         str(out), "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = Manifest.read(out / "1")
    assert manifest.name == "effect.upscale_x2" and manifest.quick
    assert manifest.sha256 == sha256_of(out / "1" / "model.onnx")
    # Held-out figures for the model and the bicubic baseline, side by side.
    assert {"psnr_model", "psnr_bicubic", "ssim_model", "ssim_bicubic"} <= set(manifest.metrics)
    assert set(manifest.metrics["per_photo"]) == {"skimage:coffee", "skimage:rocket", "sklearn:flower.jpg"}

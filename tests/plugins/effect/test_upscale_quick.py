"""The upscale recipe runs end to end in quick mode: train, export, validate, evaluate."""

from __future__ import annotations

from pathlib import Path

from tests.models import quick_export


def test_quick_export_x2(tmp_path: Path) -> None:
    out = tmp_path / "upscale"
    manifest = quick_export("effect.upscale_x2", out)
    # Held-out figures for the model and the bicubic baseline, side by side.
    assert {"psnr_model", "psnr_bicubic", "ssim_model", "ssim_bicubic"} <= set(manifest.metrics)
    assert set(manifest.metrics["per_photo"]) == {"skimage:coffee", "skimage:rocket", "sklearn:flower.jpg"}

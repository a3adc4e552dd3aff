"""effect.upscale: the shipped models beat bicubic on held-out photographs, served end to end."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from museforge.client import Client, field_violations
from museforge.engine.codecs.encoders import read_png_provenance
from museforge.plugins.effect.photo_data import photo_split
from museforge.plugins.effect.upscale import MODEL, MODELS
from museforge.plugins.effect.upscale_quality import evaluate_upscaler, session_upscaler
from museforge.runtime.manifest import Manifest, sha256_of
from tests.models import shipped_session


@pytest.fixture(scope="module")
def held_out() -> tuple[tuple[np.ndarray, ...], tuple[str, ...]]:
    split = photo_split()
    return split.held_out, split.held_out_names


def session(scale: int) -> ort.InferenceSession:
    return shipped_session(MODELS / f"upscale_x{scale}" / "1")


def test_x2_beats_bicubic_by_a_decibel_on_held_out_photographs(
        held_out: tuple[tuple[np.ndarray, ...], tuple[str, ...]]) -> None:
    figures = evaluate_upscaler(session_upscaler(session(2)), 2, *held_out)
    assert figures["psnr_gain_db"] >= 1.0, figures
    assert figures["ssim_model"] > figures["ssim_bicubic"], figures
    for name, per_photo in figures["per_photo"].items():
        assert per_photo["psnr_model"] > per_photo["psnr_bicubic"], name


def test_x4_beats_bicubic_on_held_out_photographs(
        held_out: tuple[tuple[np.ndarray, ...], tuple[str, ...]]) -> None:
    figures = evaluate_upscaler(session_upscaler(session(4)), 4, *held_out)
    assert figures["psnr_gain_db"] > 0.3, figures
    assert figures["ssim_model"] > figures["ssim_bicubic"], figures


@pytest.mark.parametrize("scale", [2, 4])
def test_manifest_records_the_figures_the_model_gives(scale: int) -> None:
    manifest = Manifest.read(MODELS / f"upscale_x{scale}" / "1")
    assert manifest.name == MODEL[scale] and not manifest.quick
    assert manifest.sha256 == sha256_of(MODELS / f"upscale_x{scale}" / "1" / "model.onnx")
    assert manifest.metrics["psnr_gain_db"] == pytest.approx(
        manifest.metrics["psnr_model"] - manifest.metrics["psnr_bicubic"])
    assert "held out whole" in manifest.dataset["source"]


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_served_result_is_the_same_whatever_the_tile(client: Client) -> None:
    from skimage import data

    frame = np.asarray(data.coffee())[:150, :210]  # held out from training
    small = client.apply_effect("effect.upscale", [png(frame)], {"scale": 2, "tile": 64})
    large = client.apply_effect("effect.upscale", [png(frame)], {"scale": 2, "tile": 1024})
    a = np.asarray(Image.open(io.BytesIO(small.artifacts[0].data)), np.int16)
    b = np.asarray(Image.open(io.BytesIO(large.artifacts[0].data)), np.int16)
    assert a.shape == (300, 420, 3)
    # A 12-px halo covers the network's receptive field: tiles change nothing but rounding.
    assert np.abs(a - b).max() <= 1
    provenance = read_png_provenance(small.artifacts[0].data)
    assert provenance["effect"] == "effect.upscale" and '"scale": 2' in provenance["parameters"]


def test_bad_scale_and_oversized_results_are_refused(client: Client) -> None:
    frame = png(np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(grpc.RpcError) as caught:
        client.apply_effect("effect.upscale", [frame], {"scale": 3})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "parameters.scale" in dict(field_violations(caught.value))
    big = png(np.zeros((2100, 2100), np.uint8))  # x4 would be 8400 x 8400
    with pytest.raises(grpc.RpcError) as caught:
        client.apply_effect("effect.upscale", [big], {"scale": 4})
    assert "8192" in dict(field_violations(caught.value))["parameters.scale"]


def test_cli_apply_upscales_a_file(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(png(np.full((30, 44, 3), 128, np.uint8)))
    out = tmp_path / "out.png"
    result = subprocess.run(
        [sys.executable, "-m", "museforge.cli", "apply", "effect.upscale", "--local", "--param",
         "scale=2", str(source), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(out) as image:
        assert image.size == (88, 60)
        assert abs(float(np.asarray(image).mean()) - 128) < 2

"""`museforge export mesh.props --quick`: trains, exports decoder and encoder, validates, evaluates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from museforge.plugins.mesh.props_data import RESOLUTION
from museforge.runtime.manifest import Manifest, sha256_of
from tests.models import quick_export


def test_quick_export_writes_the_decoder_and_its_encoder(tmp_path: Path) -> None:
    out = tmp_path / "props"
    manifest = quick_export("mesh.props", out)
    assert [t.name for t in manifest.inputs] == ["latent", "family"]
    assert manifest.outputs[0].shape == ["batch", RESOLUTION, RESOLUTION, RESOLUTION]
    assert {"reconstruction_iou", "watertight", "family_accuracy"} <= set(manifest.metrics)
    assert manifest.dataset["fingerprint"] != manifest.dataset["held_out_fingerprint"]
    encoder_dir = out / "props_encoder" / "1"
    encoder = Manifest.read(encoder_dir)
    assert encoder.name == "mesh.props_encoder" and encoder.metrics["companion_of"] == "mesh.props"
    assert encoder.sha256 == sha256_of(encoder_dir / "model.onnx")
    assert encoder.training == manifest.training  # one run made both

    decoder = ort.InferenceSession(str(out / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    latent = np.random.default_rng(0).standard_normal((3, manifest.inputs[0].shape[1])).astype(np.float32)
    family = np.eye(5, dtype=np.float32)[[0, 2, 4]]
    (grid,) = decoder.run(None, {"latent": latent, "family": family})
    assert grid.shape == (3, RESOLUTION, RESOLUTION, RESOLUTION) and np.isfinite(grid).all()
    session = ort.InferenceSession(str(encoder_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    mean, log_var = session.run(None, {"sdf": grid, "family": family})
    assert mean.shape == log_var.shape == latent.shape

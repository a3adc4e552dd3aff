"""Recompute the held-out figures in a shipped effect.sketch manifest from its ONNX.

The figures depend on serving code as well as on the network (the region fill of hints, the
palette, the strokes laid over): when that code changes, the manifest's figures are refreshed
with this, and the quality tests check they match. Training data and weights are untouched.

    python scripts/sketch_manifest_figures.py [VERSION]     # default: the served (newest) version
"""

from __future__ import annotations

import json
import sys

import onnxruntime as ort

from museforge.plugins.effect.sketch import MODELS
from museforge.plugins.effect.sketch_quality import evaluate_session
from museforge.runtime.versions import available_versions


def main(argv: list[str]) -> None:
    folder = MODELS / "sketch" / (argv[0] if argv else str(available_versions(MODELS / "sketch")[-1]))
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["metrics"] = evaluate_session(session)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest["metrics"], indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])

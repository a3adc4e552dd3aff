"""How far an effect.sketch version's colour histograms are from the nearest-drawing baseline's,
drawing by drawing, on the 301 held-out drawings: the paired difference of their histogram
distances to the artists' own colour versions, with a bootstrap interval.

    python scripts/sketch_histogram_gap.py [VERSION] [--variation V]   # default: served, 0.5

A negative difference is the model closer to the artists than the baseline.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort

from museforge.plugins.effect.sketch import MODELS
from museforge.plugins.effect.sketch_baselines import NearestDrawing
from museforge.plugins.effect.sketch_data import sketch_held_out, sketch_train
from museforge.plugins.effect.sketch_quality import held_out_drawings, histogram_distances, served
from museforge.runtime.versions import available_versions

RESAMPLES = 4000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", nargs="?", help="version folder (default: the newest)")
    parser.add_argument("--variation", type=float, default=0.5, help="as served (default 0.5)")
    args = parser.parse_args()
    folder = MODELS / "sketch" / (args.version or str(available_versions(MODELS / "sketch")[-1]))
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    lines, real = held_out_drawings(sketch_held_out(), 0.0)
    model = histogram_distances(served(session, lines, variation=args.variation), real)
    nearest = histogram_distances(NearestDrawing(sketch_train())(lines), real)
    difference = model - nearest
    rng = np.random.default_rng(0)
    means = [difference[rng.integers(0, len(difference), len(difference))].mean() for _ in range(RESAMPLES)]
    low, high = np.percentile(means, [2.5, 97.5])
    print(f"version {folder.name}, variation {args.variation:g}: model {model.mean():.3f}, nearest drawing "
          f"{nearest.mean():.3f}; difference {difference.mean():+.3f} "
          f"(95% interval {low:+.3f} to {high:+.3f}); "
          f"the model closer on {np.mean(difference < 0):.0%} of {len(difference)} drawings")


if __name__ == "__main__":
    main()

"""How many of 48 tiles per kind x look are told apart, generated beside real.

The mean pairwise distance the quality table reports hides clusters: 48 draws may spread wide on
average while a third of them are one tile. Here a tile counts as new when its mean absolute
difference from every tile kept before it is at least ``--threshold`` (of 255); the share of
pairs closer than that is printed too. Real tiles are 48 drawn at random (seed 0) from the
training and held-out splits of that kind and look; generated ones are sampled as the server
samples them (tiles_quality.generate_with_session, palette 12).

    python scripts/tiles_near_duplicates.py [--version N] [--threshold 8]
"""

from __future__ import annotations

import argparse

import numpy as np

from museforge.plugins.image.tiles import KINDS, LOOKS, MODELS_DIR
from museforge.plugins.image.tiles_data import HELD_OUT_FILE, TRAIN_FILE
from museforge.plugins.image.tiles_quality import generate_with_session
from museforge.runtime.manifest import verify

PER_CONDITION = 48


def distinct(tiles: np.ndarray, threshold: float) -> int:
    kept: list[np.ndarray] = []
    for tile in tiles.astype(np.float32):
        if all(np.abs(tile - other).mean() >= threshold for other in kept):
            kept.append(tile)
    return len(kept)


def close_pairs(tiles: np.ndarray, threshold: float) -> float:
    flat = tiles.reshape(len(tiles), -1).astype(np.float32)
    close = total = 0
    for i in range(len(flat) - 1):
        gaps = np.abs(flat[i + 1:] - flat[i]).mean(axis=1)
        close, total = close + int((gaps < threshold).sum()), total + len(gaps)
    return close / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", type=int, default=0, help="model version (default: the newest)")
    parser.add_argument("--threshold", type=float, default=8.0, help="mean |difference| under which two "
                        "tiles count as one (of 255)")
    args = parser.parse_args()
    import onnxruntime as ort

    versions = sorted(int(p.name) for p in MODELS_DIR.iterdir() if p.name.isdigit())
    version = args.version or versions[-1]
    _, data = verify(MODELS_DIR / str(version))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    generated, kinds, looks, _ = generate_with_session(session, PER_CONDITION)
    generated = np.asarray(np.rint(np.clip(generated, 0.0, 1.0) * 255.0), np.uint8)
    splits = [np.load(path) for path in (TRAIN_FILE, HELD_OUT_FILE)]
    real = np.concatenate([s["tiles"] for s in splits])
    real_kind = np.concatenate([s["kind"] for s in splits])
    real_look = np.concatenate([s["look"] for s in splits])
    rng = np.random.default_rng(0)
    t = args.threshold
    print(f"image.tiles version {version}; a tile is new at mean |difference| >= {t:g} of 255\n")
    print(f"{'kind':6}  {'look':7}  real tiles  real distinct  real close pairs  generated distinct  "
          f"generated close pairs")
    for k, kind in enumerate(KINDS):
        for lk, look in enumerate(LOOKS):
            pool = real[(real_kind == k) & (real_look == lk)]
            sample = pool[rng.permutation(len(pool))[:PER_CONDITION]]
            made = generated[(kinds == k) & (looks == lk)]
            print(f"{kind:6}  {look:7}  {len(pool):10}  {distinct(sample, t):6} / {len(sample):3}  "
                  f"{close_pairs(sample, t):16.3f}  {distinct(made, t):11} / {len(made):3}  "
                  f"{close_pairs(made, t):21.3f}")


if __name__ == "__main__":
    main()

"""The next ``effect.sketch`` version: a shipped one with its weights stored as float16 (export path).

Version 5 is 10.7 MB, most of it float32 weights: the U-Net's, the colour-mix guess's and the
memory's projection. Stored as float16 (``museforge.export.half_storage``; computed in float32
as before), the same graph is 6.4 MB, and its held-out figures move in the fourth digit
(docs/effects/sketch.md). The memory's answers are already one byte a pixel and stay as they are.

``python -m museforge.plugins.effect.sketch_half --from-version 5`` writes it (about a minute:
the figures are measured again on the held-out drawings); nothing is trained.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

__all__ = ["derive_half_version", "main"]

_PARITY_DRAWINGS = 16


def derive_half_version(parent: Path, output: Path, version: int | None = None, quick: bool = False) -> Path:
    """``output/<version>/``: the shipped version at ``parent`` with its large weights stored as
    float16, the largest change of each output on training-like batches recorded and the held-out
    figures measured again (``quick``: on 12 drawings, against baselines of 48)."""
    import onnxruntime as ort

    from museforge.export.derived import ShippedVersion
    from museforge.export.half_storage import half_stored, largest_output_changes, storage_record

    from .sketch_batches import training_batch
    from .sketch_net import STYLE
    from .sketch_quality import evaluate_session, evaluation_pairs

    shipped = ShippedVersion.read(parent)
    if version is not None and (output / str(version)).exists():
        raise FileExistsError(f"{output / str(version)} exists; a version is never overwritten")
    whole = shipped.graph()
    half, storage = half_stored(whole)
    train, held = evaluation_pairs(quick)
    lines, hints, _ = training_batch(held, np.random.default_rng(0), _PARITY_DRAWINGS)
    style = np.random.default_rng(1).standard_normal((_PARITY_DRAWINGS, STYLE)).astype(np.float32)
    changes = largest_output_changes(whole, half, [{"lines": lines, "hints": hints, "style": style}])
    session = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    metrics = evaluate_session(session, held=held, train=train)
    record = storage_record(storage, changes)
    return shipped.derive(half, output, version, hyperparameters=record, metrics=metrics, quick=quick)


def main(argv: list[str] | None = None) -> int:
    from museforge.export.derived import derivation_main

    from .sketch import MODELS

    return derivation_main(
        argv, prog="python -m museforge.plugins.effect.sketch_half", model="effect.sketch",
        models=MODELS / "sketch", derive=derive_half_version,
        description="Write the next effect.sketch version: a shipped version with its large weights "
                    "stored as float16 (about half the file; computed in float32 as before), its "
                    "held-out figures measured again (about a minute). Nothing is trained.",
        quick_help="figures on 12 held-out drawings against baselines of 48 (a smoke test)")


if __name__ == "__main__":
    sys.exit(main())

"""``museforge export effect.sketch``: train the sketch-colouring U-Net on OpenMoji's drawing pairs and
serve it beside a colour memory of the training drawings ranked by a colour-mix guess
(``sketch_memory``, ``sketch_colour_mix``), the large weights stored as float16
(``museforge.export.half_storage``).

A full run fetches npm openmoji 17.0.0 by pinned sha256, renders its line art and colour SVGs
at 64 x 64 and checks the committed splits are exactly those; ``--quick`` trains a few steps
on 96 committed pairs, offline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from . import sketch
from .sketch_batches import training_batch
from .sketch_canvas import SIZE
from .sketch_colour_mix import FULL_STEPS as MIX_STEPS
from .sketch_colour_mix import QUICK_STEPS as MIX_QUICK_STEPS
from .sketch_data import SKETCH_TRAINING_DATA, held_out_fingerprint, sketch_split
from .sketch_hints import HINT_CHANNELS
from .sketch_memory import DIMENSIONS, NEIGHBOURS, SHAPE_WEIGHT, SketchWithMemory, palette_spec, ranked_memory
from .sketch_net import MULTIPLE, STYLE
from .sketch_quality import evaluate_session
from .sketch_region_colours import DRAW_OUTPUT
from .sketch_train import FULL_STEPS, QUICK_STEPS, train_sketch

SPEC = ExportSpec(
    inputs=(
        TensorSpec("lines", "float32", ("batch", 1, SIZE, SIZE)),
        TensorSpec("hints", "float32", ("batch", HINT_CHANNELS, SIZE, SIZE)),
        TensorSpec("style", "float32", ("batch", STYLE)),
    ),
    outputs=(TensorSpec("image", "float32", ("batch", 4, SIZE, SIZE)), palette_spec(SIZE),
             TensorSpec(DRAW_OUTPUT, "float32", ("batch",))),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=64,
)


def build(ctx: RecipeContext) -> TrainedModel:
    if sketch.STYLE != STYLE or SIZE % MULTIPLE:
        raise RuntimeError("serving constants in sketch.py / sketch_canvas.py differ from the training ones")
    ctx.use(SKETCH_TRAINING_DATA)
    split = sketch_split(quick=ctx.quick)
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    generator = train_sketch(split.train, seed=ctx.seed, steps=steps, hooks=ctx.hooks)
    memory = ranked_memory(split.train, seed=ctx.seed, quick=ctx.quick)

    def make_inputs(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        lines, hints, _ = training_batch(split.held_out, rng, batch)
        style = rng.standard_normal((batch, STYLE)).astype(np.float32)
        return {"lines": lines, "hints": hints, "style": style}

    def evaluate(session: Any) -> dict[str, Any]:
        held = split.held_out if not ctx.quick else split.held_out.subset(np.arange(12))
        return evaluate_session(session, held=held, train=None if not ctx.quick else split.train)

    return TrainedModel(
        module=SketchWithMemory(generator, memory),
        spec=SPEC,
        make_inputs=make_inputs,
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "held_out_fingerprint": held_out_fingerprint(), "train_pairs": len(split.train),
                 "held_out_pairs": len(split.held_out), "size": SIZE, "committed_fixture": ctx.quick},
        hyperparameters={"steps": steps, "style": STYLE,
                         "colour_memory": {"drawings": len(split.train), "neighbours": NEIGHBOURS,
                                           "dimensions": DIMENSIONS, "ranked_by_colour_mix": {
                                               "candidates": memory.candidates, "shape_weight": SHAPE_WEIGHT,
                                               "steps": MIX_QUICK_STEPS if ctx.quick else MIX_STEPS}}},
        evaluate=evaluate,
        float16_weights=True,  # 6.4 MB instead of 10.7 (version 6; docs/effects/sketch.md)
    )

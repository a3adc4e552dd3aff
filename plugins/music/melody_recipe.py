"""``museforge export music.melody``: train the style-conditioned GRU on music21's corpus."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from . import dataset
from .melody_net import HIDDEN, LAYERS, MelodyNet, MelodyStep
from .melody_quality import evaluate_melody_model
from .melody_train import MAX_TOKENS, train_melody
from .theory import MODES
from .tokens import BARS_LEFT_CLIP, MAX_DURATION, METRES, STYLES, VOCABULARY

BATCH = 32
FULL_STEPS = 1800
QUICK_STEPS = 3
LR = 3e-3
CONDITION_INPUTS = ("token", "position", "bars_left", "style", "tonic", "mode", "metre")

# The values each index input takes: the sizes of the network's embedding tables.
CONDITION_HIGHS = {"token": VOCABULARY, "position": MAX_DURATION, "bars_left": BARS_LEFT_CLIP + 1,
                   "style": len(STYLES), "tonic": 12, "mode": len(MODES), "metre": len(METRES)}

SPEC = ExportSpec(
    inputs=(*(TensorSpec(name, "int64", ("batch",), range=(0, CONDITION_HIGHS[name] - 1))
              for name in CONDITION_INPUTS),
            TensorSpec("state", "float32", ("batch", LAYERS, HIDDEN))),
    outputs=(TensorSpec("logits", "float32", ("batch", VOCABULARY)),
             TensorSpec("next_state", "float32", ("batch", LAYERS, HIDDEN))),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=64,
)


def make_inputs(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    feed = {name: rng.integers(0, high, size=batch).astype(np.int64)
            for name, high in CONDITION_HIGHS.items()}
    feed["state"] = (0.5 * rng.standard_normal((batch, LAYERS, HIDDEN))).astype(np.float32)
    return feed


def session_step(session: ort.InferenceSession):  # type: ignore[no-untyped-def]
    def step(feed: Any) -> dict[str, np.ndarray]:
        logits, state = session.run(["logits", "next_state"], dict(feed))
        return {"logits": logits, "next_state": state}

    return step


def build(ctx: RecipeContext) -> TrainedModel:
    data = dataset.load()
    train, held_out = data.split(held_out=False), data.split(held_out=True)
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    net = MelodyNet()
    train_melody(net, train, steps=steps, batch=BATCH, seed=ctx.seed, lr=LR, progress=ctx.progress,
                 checkpoint=ctx.checkpoints.save)

    def evaluate(session: ort.InferenceSession) -> dict[str, Any]:
        if ctx.quick:  # seconds: a few pieces prove the pipeline, nothing more
            small_held = [m for s in STYLES for m in data.of_style(s, held_out=True)[:4]]
            small_train = [m for s in STYLES for m in data.of_style(s, held_out=False)[:30]]
            return evaluate_melody_model(session_step(session), (LAYERS, HIDDEN), small_train, small_held,
                                         per_style=2, bars=4)
        return evaluate_melody_model(session_step(session), (LAYERS, HIDDEN), train, held_out)

    counts = {s: {"train": len(data.of_style(s, held_out=False)),
                  "held_out": len(data.of_style(s, held_out=True))} for s in STYLES}
    return TrainedModel(
        module=MelodyStep(net),
        spec=SPEC,
        make_inputs=make_inputs,
        dataset={"source": data.source, "fingerprint": data.fingerprint, "pieces": counts,
                 "held_out": "10% of pieces per style, chosen by a hash of the piece id (whole pieces)",
                 "augmentation": "every training piece transposed to a random one of 12 keys per draw"},
        hyperparameters={"steps": steps, "batch": BATCH, "lr": LR, "hidden": HIDDEN, "layers": LAYERS,
                         "max_tokens": MAX_TOKENS, "optimiser": "Adam, warm-up + cosine to 5%, clip 1.0",
                         "loss": "per-token cross-entropy"},
        evaluate=evaluate,
    )

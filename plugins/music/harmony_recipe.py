"""``museforge export music.harmony``: train the harmony GRU on Bach's four-part chorales."""

from __future__ import annotations

from typing import Any

from museforge.export.datasets import TrainingData
from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec, normal

from . import chorale_voices
from .harmony_features import HIDDEN, INPUT_SIZES, LOWER_VOICES, PIECE_INPUTS, STEP_INPUTS, classes
from .harmony_net import HarmonyBars, HarmonyNet
from .harmony_quality import evaluate_harmony, session_infer
from .harmony_train import SHIFTS, batch_of, train_harmony, voice_losses

BATCH = 24
FULL_STEPS = 4000
QUICK_STEPS = 3
LR = 2e-3
MAX_STEPS_PER_CALL = 24  # the longest bar (12 eighths) twice over: what the server feeds at once

SPEC = ExportSpec(
    inputs=(*(TensorSpec(name, "int64", ("batch", "steps"), range=(0, INPUT_SIZES[name] - 1))
              for name in STEP_INPUTS),
            *(TensorSpec(name, "int64", ("batch",), range=(0, INPUT_SIZES[name] - 1))
              for name in PIECE_INPUTS),
            TensorSpec("state", "float32", ("batch", 1, HIDDEN), example=normal(0.5))),
    outputs=(*(TensorSpec(voice, "float32", ("batch", "steps", classes(voice))) for voice in LOWER_VOICES),
             TensorSpec("next_state", "float32", ("batch", 1, HIDDEN))),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=16,
    max_input_elements=16 * (len(STEP_INPUTS) * MAX_STEPS_PER_CALL + len(PIECE_INPUTS) + HIDDEN),
    example_axes={"steps": (4, 13)},
)

CHORALE_DATA = TrainingData(
    name=("J.S. Bach four-part chorales, all four voices (music21 corpus bach/*.mxl, *.xml), 343 pieces "
          "kept"),
    licence="unverified", registry="pypi", package="music21")


def held_out_nll(net: HarmonyNet, held_out: list[chorale_voices.Chorale]) -> dict[str, float]:
    """Mean cross-entropy per note and voice on the held-out chorales in their own keys (nats)."""
    import torch

    net.eval()
    with torch.no_grad():
        parts = voice_losses(net, batch_of(held_out, [0] * len(held_out)))
    return {voice: round(float(parts[voice] / parts[f"{voice}_count"]), 4) for voice in LOWER_VOICES}


def build(ctx: RecipeContext) -> TrainedModel:
    ctx.use(CHORALE_DATA)
    data = chorale_voices.load()
    train, held_out = data.split(held_out=False), data.split(held_out=True)
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    net = HarmonyNet()
    train_harmony(net, train, steps=steps, batch=BATCH, seed=ctx.seed, lr=LR, hooks=ctx.hooks)
    nll = held_out_nll(net, held_out)

    def evaluate(session: Any) -> dict[str, Any]:
        pieces = held_out[:3] if ctx.quick else held_out
        return {**evaluate_harmony(session_infer(session), pieces), "nll_held_out": nll}

    return TrainedModel(
        module=HarmonyBars(net),
        spec=SPEC,
        dataset={"source": data.source, "fingerprint": data.fingerprint,
                 "pieces": {"train": len(train), "held_out": len(held_out)},
                 "held_out": "10% of chorales, chosen by a hash of the piece id (whole pieces; the melody "
                             "model's split)",
                 "augmentation": f"every training chorale moved by a random one of "
                                 f"{min(SHIFTS)}..{max(SHIFTS)} "
                                 "semitones per draw"},
        hyperparameters={"steps": steps, "batch": BATCH, "lr": LR, "hidden": HIDDEN,
                         "optimiser": "Adam, warm-up + cosine to 5%, clip 1.0",
                         "loss": "per-note cross-entropy of alto, tenor and bass",
                         "decoder": "Viterbi over the 5 likeliest pitches per voice with part-writing costs"},
        evaluate=evaluate,
    )


"""``museforge export music.melody``: train the style-conditioned GRU on music21's corpus."""

from __future__ import annotations

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec, normal

from . import dataset
from .melody_net import HIDDEN, LAYERS, MelodyNet, MelodyStep
from .melody_quality import evaluate_session
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
            TensorSpec("state", "float32", ("batch", LAYERS, HIDDEN), example=normal(0.5))),
    outputs=(TensorSpec("logits", "float32", ("batch", VOCABULARY)),
             TensorSpec("next_state", "float32", ("batch", LAYERS, HIDDEN))),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=64,
)


def build(ctx: RecipeContext) -> TrainedModel:
    ctx.use(*dataset.MELODY_TRAINING_DATA)  # Essen: non-commercial, refused unless allowed
    data = dataset.load()
    train = data.split(held_out=False)
    steps = QUICK_STEPS if ctx.quick else FULL_STEPS
    net = MelodyNet()
    train_melody(net, train, steps=steps, batch=BATCH, seed=ctx.seed, lr=LR, hooks=ctx.hooks)
    counts = {s: {"train": len(data.of_style(s, held_out=False)),
                  "held_out": len(data.of_style(s, held_out=True))} for s in STYLES}
    return TrainedModel(
        module=MelodyStep(net),
        spec=SPEC,
        dataset={"source": data.source, "fingerprint": data.fingerprint, "pieces": counts,
                 "held_out": "10% of pieces per style, chosen by a hash of the piece id (whole pieces)",
                 "augmentation": "every training piece transposed to a random one of 12 keys per draw"},
        hyperparameters={"steps": steps, "batch": BATCH, "lr": LR, "hidden": HIDDEN, "layers": LAYERS,
                         "max_tokens": MAX_TOKENS, "optimiser": "Adam, warm-up + cosine to 5%, clip 1.0",
                         "loss": "per-token cross-entropy"},
        evaluate=lambda session: evaluate_session(session, (LAYERS, HIDDEN), data, ctx.quick),
    )

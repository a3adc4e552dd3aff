"""``museforge export image.digits``: train the conditional GAN and describe its export."""

from __future__ import annotations

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from .digits import NOISE_DIM
from .digits_data import digits_28
from .digits_gan import FULL_EPOCHS, NUM_CLASSES, QUICK_EPOCHS, train_digits_gan
from .digits_quality import SAMPLES_PER_DIGIT, evaluate_session

SPEC = ExportSpec(
    inputs=(
        TensorSpec("z", "float32", ("batch", NOISE_DIM)),
        TensorSpec("label", "int64", ("batch",), range=(0, NUM_CLASSES - 1)),
    ),
    outputs=(TensorSpec("image", "float32", ("batch", 1, 28, 28)),),
    opset=17,
    rtol=1e-3,
    atol=1e-4,
    max_batch_size=256,
)


def build(ctx: RecipeContext) -> TrainedModel:
    split = digits_28()
    epochs = QUICK_EPOCHS if ctx.quick else FULL_EPOCHS
    generator = train_digits_gan(split, seed=ctx.seed, epochs=epochs, hooks=ctx.hooks)
    return TrainedModel(
        module=generator,
        spec=SPEC,
        dataset={
            "source": split.source,
            "fingerprint": split.fingerprint,
            "train_images": len(split.train_x),
            "held_out_images": len(split.test_x),
        },
        hyperparameters={"epochs": epochs, "batch_size": 64, "noise_dim": NOISE_DIM},
        evaluate=lambda session: evaluate_session(
            session, split, per_digit=20 if ctx.quick else SAMPLES_PER_DIGIT
        ),
    )

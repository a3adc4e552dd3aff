"""``museforge export image.digits``: train the conditional GAN and describe its export."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from museforge.export.datasets import DigitsSplit, digits_28
from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from .digits import NOISE_DIM, sample_inputs
from .digits_gan import FULL_EPOCHS, NUM_CLASSES, QUICK_EPOCHS, train_digits_gan
from .digits_quality import evaluate_digits

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
SAMPLES_PER_DIGIT = 200  # generated images per class for the quality figures
EVAL_SEED = 20261123


def generate_with_session(
    session: ort.InferenceSession, per_digit: int, seed: int
) -> dict[int, np.ndarray]:
    """``per_digit`` images of every digit from an ONNX session, exactly as the server samples."""
    out: dict[int, np.ndarray] = {}
    for digit in range(10):
        feed = sample_inputs(seed + digit, per_digit, digit)
        out[digit] = session.run(["image"], feed)[0][:, 0]
    return out


def evaluate_session(
    session: ort.InferenceSession, split: DigitsSplit, per_digit: int = SAMPLES_PER_DIGIT
) -> dict[str, Any]:
    figures = evaluate_digits(generate_with_session(session, per_digit, EVAL_SEED), split)
    return {**figures, "samples_per_digit": per_digit}


def build(ctx: RecipeContext) -> TrainedModel:
    split = digits_28()
    epochs = QUICK_EPOCHS if ctx.quick else FULL_EPOCHS
    generator = train_digits_gan(split, seed=ctx.seed, epochs=epochs, progress=ctx.progress,
                                 checkpoint=ctx.checkpoints.save)

    def make_inputs(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        return {
            "z": rng.standard_normal((batch, NOISE_DIM)).astype(np.float32),
            "label": rng.integers(0, 10, size=batch).astype(np.int64),
        }

    return TrainedModel(
        module=generator,
        spec=SPEC,
        make_inputs=make_inputs,
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

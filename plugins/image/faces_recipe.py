"""``museforge export image.faces``: train the DCGAN on LFW faces and describe its export."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from museforge.export.face_data import FaceSplit, faces_split
from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from . import faces
from .faces_gan import FULL_EPOCHS, LATENT_DIM, QUICK_EPOCHS, train_faces_gan
from .faces_quality import evaluate_faces

SPEC = ExportSpec(
    inputs=(TensorSpec("z", "float32", ("batch", LATENT_DIM)),),
    outputs=(TensorSpec("image", "float32", ("batch", 1, 32, 32)),),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=256,
)
SAMPLES = 500
EVAL_SEED = 20261123


def generate_with_session(session: ort.InferenceSession, count: int, seed: int) -> np.ndarray:
    """``count`` faces from an ONNX session, sampled exactly as the server samples."""
    z = np.random.default_rng(seed).standard_normal((count, LATENT_DIM)).astype(np.float32)
    return np.asarray(session.run(["image"], {"z": z})[0])[:, 0]


def evaluate_session(session: ort.InferenceSession, split: FaceSplit,
                     count: int = SAMPLES) -> dict[str, Any]:
    return {**evaluate_faces(generate_with_session(session, count, EVAL_SEED), split),
            "samples": count}


def build(ctx: RecipeContext) -> TrainedModel:
    if faces.LATENT_DIM != LATENT_DIM:
        raise RuntimeError("faces.LATENT_DIM (serving) differs from faces_gan.LATENT_DIM")
    split = faces_split()
    epochs = QUICK_EPOCHS if ctx.quick else FULL_EPOCHS
    generator = train_faces_gan(split, seed=ctx.seed, epochs=epochs, progress=ctx.progress,
                                checkpoint=ctx.checkpoints.save)

    def make_inputs(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        return {"z": rng.standard_normal((batch, LATENT_DIM)).astype(np.float32)}

    return TrainedModel(
        module=generator,
        spec=SPEC,
        make_inputs=make_inputs,
        dataset={
            "source": split.source,
            "fingerprint": split.fingerprint,
            "train_faces": len(split.train_faces),
            "held_out_faces": len(split.test_faces),
        },
        hyperparameters={"epochs": epochs, "latent_dim": LATENT_DIM},
        evaluate=lambda session: evaluate_session(session, split, 100 if ctx.quick else SAMPLES),
    )

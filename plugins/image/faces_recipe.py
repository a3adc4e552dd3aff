"""``museforge export image.faces``: train the DCGAN on LFW faces and describe its export."""

from __future__ import annotations

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from . import faces
from .face_data import FACES_TRAINING_DATA, faces_split
from .faces_gan import FULL_EPOCHS, LATENT_DIM, QUICK_EPOCHS, train_faces_gan
from .faces_quality import SAMPLES, evaluate_session

SPEC = ExportSpec(
    inputs=(TensorSpec("z", "float32", ("batch", LATENT_DIM)),),
    outputs=(TensorSpec("image", "float32", ("batch", 1, 32, 32)),),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=256,
)


def build(ctx: RecipeContext) -> TrainedModel:
    if faces.LATENT_DIM != LATENT_DIM:
        raise RuntimeError("faces.LATENT_DIM (serving) differs from faces_gan.LATENT_DIM")
    ctx.use(*FACES_TRAINING_DATA)
    split = faces_split()
    epochs = QUICK_EPOCHS if ctx.quick else FULL_EPOCHS
    generator = train_faces_gan(split, seed=ctx.seed, epochs=epochs, hooks=ctx.hooks)
    return TrainedModel(
        module=generator,
        spec=SPEC,
        dataset={
            "source": split.source,
            "fingerprint": split.fingerprint,
            "train_faces": len(split.train_faces),
            "held_out_faces": len(split.test_faces),
        },
        hyperparameters={"epochs": epochs, "latent_dim": LATENT_DIM},
        evaluate=lambda session: evaluate_session(session, split, 100 if ctx.quick else SAMPLES),
    )

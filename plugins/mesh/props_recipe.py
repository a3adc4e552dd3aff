"""``museforge export mesh.props``: train the props VAE, export its decoder (served) and encoder."""

from __future__ import annotations

import numpy as np

from museforge.export.datasets import TrainingData
from museforge.export.pipeline import Companion, RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from .props_data import RESOLUTION, TRUNCATION, family_weights, prop_grids
from .props_net import CHANNELS, LATENT, ServedDecoder, ServedEncoder
from .props_quality import ENCODER, HELD_OUT_PER_FAMILY, QUICK_PER_FAMILY, evaluate_sessions
from .props_train import VAESettings, fit_family_prior, train_vae
from .shapes import FAMILIES

TRAIN_PER_FAMILY = 600
FULL = VAESettings(steps=4000)
QUICK = VAESettings(steps=3, batch=4)
GRID = ("batch", RESOLUTION, RESOLUTION, RESOLUTION)


def family_blends(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Family weights for validation: one-hot rows and blends between two families."""
    batch = shape[0]
    weights = family_weights(rng.integers(0, len(FAMILIES), batch))
    blend = rng.uniform(0.0, 1.0, (batch, 1)).astype(np.float32)
    other = family_weights(rng.integers(0, len(FAMILIES), batch))
    return (weights * blend + other * (1 - blend)).astype(np.float32)


DECODER_SPEC = ExportSpec(
    inputs=(TensorSpec("latent", "float32", ("batch", LATENT)),
            TensorSpec("family", "float32", ("batch", len(FAMILIES)), range=(0.0, 1.0),
                       example=family_blends)),
    outputs=(TensorSpec("sdf", "float32", GRID),),
    atol=1e-3, max_batch_size=16,
)
ENCODER_SPEC = ExportSpec(
    inputs=(TensorSpec("sdf", "float32", GRID),
            TensorSpec("family", "float32", ("batch", len(FAMILIES)), range=(0.0, 1.0))),
    outputs=(TensorSpec("mean", "float32", ("batch", LATENT)),
             TensorSpec("log_var", "float32", ("batch", LATENT))),
    atol=1e-3, max_batch_size=16,
)


def encoder_inputs(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    """Real fields with their own families: random values are no distance field to encode."""
    grids = prop_grids("held_out", 1).grids  # one per family
    pick = rng.integers(0, len(grids), batch)
    return {"sdf": grids[pick], "family": family_weights(pick)}


def build(ctx: RecipeContext) -> TrainedModel:
    ctx.use(*PROPS_TRAINING_DATA)
    per_family = QUICK_PER_FAMILY if ctx.quick else TRAIN_PER_FAMILY
    settings = QUICK if ctx.quick else FULL
    train = prop_grids("train", per_family)
    held_out = prop_grids("held_out", QUICK_PER_FAMILY if ctx.quick else HELD_OUT_PER_FAMILY)
    vae = train_vae(train, settings, ctx.seed, hooks=ctx.hooks)
    prior = fit_family_prior(vae, train)
    return TrainedModel(
        module=ServedDecoder(vae.decoder, prior),
        spec=DECODER_SPEC,
        dataset={
            "source": f"procedural prop families (museforge.plugins.mesh.shapes): {', '.join(FAMILIES)}; "
                      f"{per_family} training shapes per family, {len(held_out.grids) // len(FAMILIES)} "
                      f"held-out per family from a disjoint seed stream",
            "fingerprint": train.fingerprint,
            "held_out_fingerprint": held_out.fingerprint,
            "grid": f"{RESOLUTION}^3 cell centres over [-1, 1]^3, distance truncated at "
                    f"{TRUNCATION:g} and divided by it",
        },
        hyperparameters={"steps": settings.steps, "batch": settings.batch, "lr": settings.lr,
                         "optimiser": f"Adam {settings.lr:g}, cosine", "kl_weight": settings.kl_weight,
                         "kl_warmup": settings.kl_warmup, "band_weight": settings.band_weight,
                         "latent": LATENT, "channels": list(CHANNELS), "augment": "mirror x, mirror z",
                         "sampling": "per-family Gaussian fitted to the training posteriors"},
        companions=(Companion(ENCODER, "props_encoder", ServedEncoder(vae.encoder, prior), ENCODER_SPEC,
                              encoder_inputs),),
        evaluate_sessions=lambda sessions: evaluate_sessions(sessions, held_out, ctx.quick),
    )


# What the recipes train on, and the terms it comes under (see docs/licences.md).
PROPS_TRAINING_DATA = (
    TrainingData(
        name=('procedural prop families rock/vase/crate/column/mushroom '
              '(museforge.plugins.mesh.shapes), seeded numpy SDFs'),
        licence='Apache-2.0',
        commercial_use=True, registry='committed', package='museforge'),
)

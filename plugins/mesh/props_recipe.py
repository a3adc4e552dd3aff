"""``museforge export mesh.props``: train the props VAE, export its decoder (served) and encoder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime as ort

from museforge.export.pipeline import Companion, RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from .props_data import RESOLUTION, TRUNCATION, prop_grids
from .props_net import CHANNELS, LATENT, ServedDecoder, ServedEncoder
from .props_train import VAESettings, family_weights, fit_family_prior, train_vae
from .shapes import FAMILIES

DECODER, ENCODER = "mesh.props", "mesh.props_encoder"
TRAIN_PER_FAMILY = 600
HELD_OUT_PER_FAMILY = 40
FULL = VAESettings(steps=4000)
QUICK = VAESettings(steps=3, batch=4)
QUICK_PER_FAMILY = 4
GRID = ("batch", RESOLUTION, RESOLUTION, RESOLUTION)

DECODER_SPEC = ExportSpec(
    inputs=(TensorSpec("latent", "float32", ("batch", LATENT)),
            TensorSpec("family", "float32", ("batch", len(FAMILIES)), range=(0.0, 1.0))),
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


def random_family(rng: np.random.Generator, batch: int) -> np.ndarray:
    """Family weights for validation: one-hot rows and blends between two families."""
    weights = family_weights(rng.integers(0, len(FAMILIES), batch))
    blend = rng.uniform(0.0, 1.0, (batch, 1)).astype(np.float32)
    other = family_weights(rng.integers(0, len(FAMILIES), batch))
    return (weights * blend + other * (1 - blend)).astype(np.float32)


def decoder_inputs(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    return {"latent": rng.standard_normal((batch, LATENT)).astype(np.float32),
            "family": random_family(rng, batch)}


def encoder_inputs(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    grids = prop_grids("held_out", 1).grids  # real fields: one per family
    pick = rng.integers(0, len(grids), batch)
    return {"sdf": grids[pick], "family": family_weights(pick)}


def build(ctx: RecipeContext) -> TrainedModel:
    per_family = QUICK_PER_FAMILY if ctx.quick else TRAIN_PER_FAMILY
    settings = QUICK if ctx.quick else FULL
    train = prop_grids("train", per_family)
    held_out = prop_grids("held_out", QUICK_PER_FAMILY if ctx.quick else HELD_OUT_PER_FAMILY)
    vae = train_vae(train, settings, ctx.seed, progress=ctx.progress, checkpoint=ctx.checkpoints.save)
    prior = fit_family_prior(vae, train)

    def evaluate(sessions: Mapping[str, ort.InferenceSession]) -> dict[str, Any]:
        from .props_quality import evaluate_props  # meshing and descriptors: serving-path code

        if ctx.quick:
            return evaluate_props(sessions[DECODER], sessions[ENCODER], held_out, samples_per_family=2,
                                  reference_per_family=6)
        return evaluate_props(sessions[DECODER], sessions[ENCODER], held_out, samples_per_family=40)

    return TrainedModel(
        module=ServedDecoder(vae.decoder, prior),
        spec=DECODER_SPEC,
        make_inputs=decoder_inputs,
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
        evaluate_sessions=evaluate,
    )

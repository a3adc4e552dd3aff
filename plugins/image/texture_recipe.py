"""``museforge export image.texture``: train the spatial GAN on packaged texture photographs."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec
from museforge.export.texture_data import FAMILIES, TextureSplit, texture_split

from . import texture
from .texture_gan import FULL_EPOCHS, NOISE_CHANNELS, QUICK_EPOCHS, SCALE, train_texture_gan
from .texture_quality import evaluate_textures, pooled_seam_ratio, seam_ratio

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
)
EVAL_SIZE = 256  # pixels a side of each evaluated texture
EVAL_PER_FAMILY = 6
EVAL_SEED = 20261123
SEAM_TILES = 24  # tileable 256-px textures per family for the pooled seam figure


def textures_with_session(session: ort.InferenceSession, family: int, size: int, count: int,
                          seed: int) -> list[np.ndarray]:
    """Tileable textures from an ONNX session, sampled as the server samples them."""
    cells = size // SCALE
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        noise = rng.standard_normal((1, NOISE_CHANNELS, cells, cells)).astype(np.float32)
        image = session.run(["image"], {"noise": noise, "family": np.array([family])})[0]
        out.append(np.asarray(image)[0, 0])
    return out


def evaluate_session(session: ort.InferenceSession, split: TextureSplit,
                     per_family: int = EVAL_PER_FAMILY) -> dict[str, Any]:
    generated = {
        name: textures_with_session(session, i, EVAL_SIZE, per_family, EVAL_SEED + i)
        for i, name in enumerate(FAMILIES)
    }
    figures: dict[str, Any] = dict(evaluate_textures(generated, split))
    seam_tiles = SEAM_TILES if per_family >= EVAL_PER_FAMILY else per_family
    for i, name in enumerate(FAMILIES):
        tiles = textures_with_session(session, i, EVAL_SIZE, seam_tiles, EVAL_SEED + 100 + i)
        figures[f"seam_ratio_pooled_256_{name}"] = pooled_seam_ratio(tiles)
    figures["seam_ratio_pooled_256"] = max(figures[f"seam_ratio_pooled_256_{n}"] for n in FAMILIES)
    # Single tiles, for information: a mortar line on the seam makes one tile's ratio large.
    figures["seam_ratio_single_max_256"] = max(
        seam_ratio(t) for images in generated.values() for t in images)
    large = textures_with_session(session, 0, 1024, 1, EVAL_SEED)[0]
    figures.update({"seam_ratio_1024": seam_ratio(large), "eval_size": EVAL_SIZE,
                    "eval_per_family": per_family, "seam_tiles_per_family": seam_tiles})
    return figures


def build(ctx: RecipeContext) -> TrainedModel:
    if (texture.FAMILIES, texture.SCALE, texture.NOISE_CHANNELS) != (FAMILIES, SCALE,
                                                                      NOISE_CHANNELS):
        raise RuntimeError("serving constants in texture.py differ from the training ones")
    split = texture_split()
    epochs = QUICK_EPOCHS if ctx.quick else FULL_EPOCHS
    generator = train_texture_gan(split, seed=ctx.seed, epochs=epochs, progress=ctx.progress,
                                  checkpoint=ctx.checkpoints.save)

    def make_inputs(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        cells_y, cells_x = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        return {
            "noise": rng.standard_normal((batch, NOISE_CHANNELS, cells_y, cells_x)).astype(
                np.float32),
            "family": rng.integers(0, len(FAMILIES), size=batch).astype(np.int64),
        }

    return TrainedModel(
        module=generator,
        spec=SPEC,
        make_inputs=make_inputs,
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "families": list(FAMILIES)},
        hyperparameters={"epochs": epochs, "scale": SCALE, "noise_channels": NOISE_CHANNELS},
        evaluate=lambda session: evaluate_session(session, split, 2 if ctx.quick else
                                                  EVAL_PER_FAMILY),
    )

"""``museforge export image.tiles``: train the tile GAN on Dungeon Crawl Stone Soup's floors and walls.

A full run fetches Debian's crawl-tiles-data (and crawl-common for its copyright file) by
pinned version and sha256; ``--quick`` trains on 96 tiles of the committed training split, offline.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from . import tiles
from .quality_checks import check_committed_judge
from .tiles_data import KINDS, LOOKS, TILES_TRAINING_DATA, held_out_fingerprint, tiles_split
from .tiles_emphasis import choose_emphasis
from .tiles_gan import (
    CELLS,
    FULL_EPOCHS,
    NOISE_CHANNELS,
    QUICK_EPOCHS,
    SCALE,
    TilesGenerator,
    emphasise_kind,
    train_tiles_gan,
)
from .tiles_quality import EVAL_PER_CONDITION, JUDGE_FILE, evaluate_session, fit_judge, load_judge

# The largest call: one 16 x 16 sheet (the schema's maximum) of 4 x 4-cell tiles.
_LARGEST_FIELD = NOISE_CHANNELS * (16 * CELLS) ** 2
SPEC = ExportSpec(
    inputs=(
        TensorSpec("noise", "float32", ("batch", NOISE_CHANNELS, "cells_y", "cells_x")),
        TensorSpec("kind", "int64", ("batch",), range=(0, len(KINDS) - 1)),
        TensorSpec("look", "int64", ("batch",), range=(0, len(LOOKS) - 1)),
    ),
    outputs=(TensorSpec("image", "float32", ("batch", 3, "height", "width")),),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=tiles.MAX_TILES_PER_CALL,
    max_input_elements=max(_LARGEST_FIELD, tiles.MAX_TILES_PER_CALL * NOISE_CHANNELS * CELLS**2) + 2 * 256,
    output_axes={"height": ("cells_y", SCALE), "width": ("cells_x", SCALE)},
    # Each validation call draws its own field: one tile to a 3 x 3 sheet, and sizes between.
    example_axes={"cells_y": (CELLS, 3 * CELLS + 1), "cells_x": (CELLS, 3 * CELLS + 1)},
)


class _TorchSession:
    """The generator behind ONNX Runtime's ``run``, so the quality code draws from it unchanged."""

    def __init__(self, generator: TilesGenerator) -> None:
        self.generator = generator

    def run(self, _names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            image = self.generator(*(torch.from_numpy(feeds[n]) for n in ("noise", "kind", "look")))
        return [image.numpy()]


def _emphasised(generator: TilesGenerator, strength: float) -> TilesGenerator:
    out = copy.deepcopy(generator)
    emphasise_kind(out, strength)
    return out


def build(ctx: RecipeContext) -> TrainedModel:
    if (tiles.KINDS, tiles.LOOKS, tiles.CELLS, tiles.NOISE_CHANNELS) != (KINDS, LOOKS, CELLS, NOISE_CHANNELS):
        raise RuntimeError("serving constants in tiles.py differ from the training ones")
    ctx.use(TILES_TRAINING_DATA)
    split = tiles_split(quick=ctx.quick)
    if not ctx.quick:
        held = split.held_out.unit()
        check_committed_judge(lambda path: fit_judge(split.train, path), JUDGE_FILE,
                              lambda a, b: float(np.mean(load_judge(a).kinds(held)
                                                         == load_judge(b).kinds(held))))
    epochs = QUICK_EPOCHS if ctx.quick else FULL_EPOCHS
    # Quick runs take BatchNorm statistics from 2 batches, not 16: most of their time otherwise.
    generator = train_tiles_gan(split, seed=ctx.seed, epochs=epochs, hooks=ctx.hooks,
                                 statistics_batches=2 if ctx.quick else 16)
    emphasis = choose_emphasis(lambda s: _TorchSession(_emphasised(generator, s)), quick=ctx.quick)
    emphasise_kind(generator, emphasis.strength)
    return TrainedModel(
        module=generator,
        spec=SPEC,
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "held_out_fingerprint": held_out_fingerprint(), "train_tiles": len(split.train),
                 "held_out_tiles": len(split.held_out), "kinds": list(KINDS), "looks": list(LOOKS),
                 "committed_fixture": ctx.quick},
        hyperparameters={"epochs": epochs, "scale": SCALE, "noise_channels": NOISE_CHANNELS,
                         "cells_per_tile": CELLS, **emphasis.record()},
        evaluate=lambda session: evaluate_session(session, 4 if ctx.quick else EVAL_PER_CONDITION),
    )

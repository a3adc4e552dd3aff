"""``museforge export image.icons``: train the icon GAN on Google's Noto Emoji from npm.

A full run fetches emoji-datasource-google 16.0.0 by pinned sha256 and refits the category
judge on its training split to check the committed one; ``--quick`` trains on the committed
90-icon fixture, offline.
"""

from __future__ import annotations

import numpy as np

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from . import icons
from .icons_data import CATEGORIES, ICON, ICONS_TRAINING_DATA, held_out_fingerprint, icons_split
from .icons_gan import FULL_EPOCHS, LATENT_DIM, QUICK_EPOCHS, train_icons_gan
from .icons_quality import EVAL_PER_CATEGORY, JUDGE_FILE, evaluate_session, fit_judge, load_judge
from .quality_checks import check_committed_judge

SPEC = ExportSpec(
    inputs=(
        TensorSpec("z", "float32", ("batch", LATENT_DIM)),
        TensorSpec("category", "int64", ("batch",), range=(0, len(CATEGORIES) - 1)),
    ),
    outputs=(TensorSpec("image", "float32", ("batch", 4, ICON, ICON)),),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=icons.CHUNK,
)


def build(ctx: RecipeContext) -> TrainedModel:
    if (icons.CATEGORIES, icons.LATENT_DIM, icons.ICON) != (CATEGORIES, LATENT_DIM, ICON):
        raise RuntimeError("serving constants in icons.py differ from the training ones")
    ctx.use(ICONS_TRAINING_DATA)
    split = icons_split(quick=ctx.quick)
    if not ctx.quick:
        held = split.held_out.unit()
        check_committed_judge(lambda path: fit_judge(split.train, path), JUDGE_FILE,
                              lambda a, b: float(np.mean(load_judge(a).categories(held)
                                                         == load_judge(b).categories(held))))
    epochs = QUICK_EPOCHS if ctx.quick else FULL_EPOCHS
    # Quick runs take BatchNorm statistics from 2 batches, not 16: most of their time otherwise.
    generator = train_icons_gan(split, seed=ctx.seed, epochs=epochs, hooks=ctx.hooks,
                                 statistics_batches=2 if ctx.quick else 16)
    return TrainedModel(
        module=generator,
        spec=SPEC,
        dataset={"source": split.source, "fingerprint": split.fingerprint,
                 "held_out_fingerprint": held_out_fingerprint(), "train_icons": len(split.train),
                 "held_out_icons": len(split.held_out), "categories": list(CATEGORIES),
                 "committed_fixture": ctx.quick},
        hyperparameters={"epochs": epochs, "latent_dim": LATENT_DIM},
        evaluate=lambda session: evaluate_session(
            session, per_category=4 if ctx.quick else EVAL_PER_CATEGORY,
            full_train=None if ctx.quick else split.train),
    )

"""A studio's own recipe, registered through register_recipes, runs the same export pipeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

import museforge
from museforge.engine.plugin_host import PluginHost
from museforge.export.pipeline import RecipeContext, TrainedModel, run_recipe
from museforge.export.spec import ExportSpec, TensorSpec
from museforge.runtime.manifest import Manifest, sha256_of

SPEC = ExportSpec(
    inputs=(TensorSpec("x", "float32", ("batch", 8)),), outputs=(TensorSpec("y", "float32", ("batch", 8)),)
)


def build(ctx: RecipeContext) -> TrainedModel:
    """Learn y = 1 - x (a contrast flip) from seeded random rows."""
    torch.manual_seed(ctx.seed)
    model = nn.Linear(8, 8)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    rng = np.random.default_rng(ctx.seed)
    steps = 20 if ctx.quick else 400
    for step in range(steps):
        x = torch.from_numpy(rng.random((32, 8), dtype=np.float32))
        loss = ((model(x) - (1 - x)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ctx.progress(step + 1, steps, {"loss": float(loss.detach())})

    def evaluate(session: ort.InferenceSession) -> dict[str, Any]:
        x = np.random.default_rng(99).random((64, 8), dtype=np.float32)  # held out: another seed
        (y,) = session.run(None, {"x": x})
        return {"mean_abs_error": float(np.abs(y - (1 - x)).mean())}

    return TrainedModel(
        module=model.eval(),
        spec=SPEC,
        make_inputs=lambda rng, batch: {"x": rng.random((batch, 8), dtype=np.float32)},
        dataset={"source": "seeded uniform rows", "fingerprint": f"seed-{ctx.seed}"},
        hyperparameters={"steps": steps},
        evaluate=evaluate,
    )


class StudioPlugin:
    def __init__(self, models: Path) -> None:
        self.models = models

    @museforge.hookimpl
    def register_recipes(self, register: Callable[[Any], None]) -> None:
        register(
            museforge.Recipe(
                name="studio.contrast",
                description="a contrast flip",
                build=f"{__name__}:build",
                models_dir=self.models,
            )
        )


def test_a_registered_recipe_exports_validates_and_evaluates(tmp_path: Path) -> None:
    host = PluginHost(load_entrypoints=False)
    host.add(StudioPlugin(tmp_path / "models"), "studio")
    recipes = host.load().recipes
    assert list(recipes) == ["studio.contrast"]
    result = run_recipe(recipes["studio.contrast"], quick=False, show_progress=False)
    manifest = Manifest.read(tmp_path / "models" / "1")
    assert result.directory == tmp_path / "models" / "1"
    assert manifest.sha256 == sha256_of(result.directory / "model.onnx")
    assert manifest.validation["batch_sizes"] == [1, 3, 8]
    assert manifest.metrics["mean_abs_error"] < 0.05  # it learned the flip, on rows it never saw

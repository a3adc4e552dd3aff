"""effect.denoise and effect.restore: quick recipes end to end, and exact tiling when served."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from museforge import Effect, Media, Recipe
from museforge.engine.effect import Picture
from museforge.export.pipeline import run_recipe
from museforge.plugins.effect import denoise, restore
from museforge.plugins.effect.denoise_quality import pad_even
from museforge.plugins.effect.restoration_net import RECEPTIVE_RADIUS
from museforge.runtime.manifest import Manifest, sha256_of
from tests.models import shipped_session
from tests.plugins.effect.sessions import SessionContext


@pytest.mark.parametrize("recipe", [*denoise.RECIPES, *restore.RECIPES], ids=lambda r: r.name)
def test_quick_export(recipe: Recipe, tmp_path: Path) -> None:
    result = run_recipe(recipe, seed=0, quick=True, output=tmp_path, show_progress=False)
    manifest = Manifest.read(result.directory)
    assert manifest.name == recipe.name and manifest.quick
    assert manifest.sha256 == sha256_of(result.directory / "model.onnx")
    assert manifest.dataset["fingerprint"] and manifest.metrics
    # Photographs inside scikit-image and scikit-learn: the releases installed when it trained.
    assert {(d.package, d.version) for d in manifest.training_data} == {
        (package, metadata.version(package)) for package in ("scikit-image", "scikit-learn")}
    assert (result.directory / "model.onnx").stat().st_size < 3_000_000


@pytest.mark.parametrize(("effect", "condition", "params"), [
    (denoise.EFFECT, "sigma", denoise.DenoiseParams(sigma=30, tile=64)),
    (restore.EFFECT, "quality", restore.RestoreParams(quality=15, tile=65)),  # odd tile, odd frame
], ids=["denoise", "restore"])
def test_tiles_match_the_whole_frame(effect: Effect, condition: str, params: BaseModel) -> None:
    """The shipped model, served tile by tile, equals one whole-frame run away from the border."""
    session = shipped_session(effect.models[0].directory / "1")
    rng = np.random.default_rng(0)
    colour = rng.random((149, 203, 3), dtype=np.float32)
    ctx = SessionContext(effect.models[0].name, session)
    outputs = list(effect.apply(ctx, params, [Picture(colour, None, "png")], 0))
    media = [m for m in outputs if isinstance(m, Media)]
    assert len(media) == 1 and ctx.calls > 1  # really tiled
    tiled = np.asarray(media[0].data)
    value = np.array([getattr(params, condition)], np.float32)
    whole = session.run(["result"], {"image": pad_even(colour).transpose(2, 0, 1)[None].copy(),
                                     condition: value})[0][0].transpose(1, 2, 0)[:149, :203]
    inner = (slice(RECEPTIVE_RADIUS + 1, -RECEPTIVE_RADIUS - 1),) * 2
    assert tiled.shape == colour.shape
    np.testing.assert_allclose(tiled[inner], np.clip(whole, 0, 1)[inner], atol=2e-5)

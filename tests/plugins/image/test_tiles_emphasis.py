"""The kind emphasis of image.tiles: what it does to the generator, and how the recipe picks it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from museforge.plugins.image.tiles import MODELS_DIR
from museforge.plugins.image.tiles_emphasis import (
    FULL_STRENGTHS,
    VALIDATION_SEEDS,
    derive_version,
    emphasised_graph,
)
from museforge.plugins.image.tiles_quality import EVAL_SEED
from museforge.runtime.manifest import Manifest
from tests.models import served_version

torch = pytest.importorskip("torch")


def _conditions(generator: object, kind: int) -> list[np.ndarray]:
    from museforge.plugins.image.tiles_gan import _Condition

    kinds, looks = torch.full((6,), kind), torch.arange(6)
    return [m(kinds, looks).detach().numpy() for m in generator.modules()  # type: ignore[attr-defined]
            if isinstance(m, _Condition)]


def test_emphasis_widens_the_gap_between_kinds_and_keeps_their_middle() -> None:
    from museforge.plugins.image.tiles_gan import TilesGenerator, emphasise_kind

    torch.manual_seed(3)
    generator = TilesGenerator()
    for p in generator.parameters():  # trained-like tables: the kinds differ
        torch.nn.init.normal_(p)
    floors, walls = _conditions(generator, 0), _conditions(generator, 1)
    emphasise_kind(generator, 0.25)
    floors2, walls2 = _conditions(generator, 0), _conditions(generator, 1)
    assert len(floors) == 10  # gain and bias of each of the 5 blocks' norms
    for f, w, f2, w2 in zip(floors, walls, floors2, walls2, strict=True):
        np.testing.assert_allclose(w2 - f2, 1.5 * (w - f), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(w2 + f2, w + f, rtol=1e-4, atol=1e-4)


def test_zero_leaves_the_generator_as_trained_and_bad_strengths_are_refused() -> None:
    from museforge.plugins.image.tiles_gan import TilesGenerator, emphasise_kind

    generator = TilesGenerator()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    emphasise_kind(generator, 0.0)
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    with pytest.raises(ValueError, match="strength"):
        emphasise_kind(generator, -0.1)


def test_the_served_version_records_its_emphasis_and_the_validation_it_was_chosen_on() -> None:
    settings = Manifest.read(served_version(MODELS_DIR)).training["hyperparameters"]
    tried = settings["kind_emphasis_validation"]
    score = {s: v["kind_accuracy"] + v["look_accuracy"] for s, v in tried.items()}
    assert score[f"{settings['kind_emphasis']:g}"] == max(score.values())
    assert len(tried) == len(FULL_STRENGTHS)
    # The choice never saw the draws the recorded figures come from.
    assert VALIDATION_SEEDS and all(abs(seed - EVAL_SEED) > 1000 for seed in VALIDATION_SEEDS)


def test_the_graph_edit_is_the_generator_edit(tmp_path: Path) -> None:
    """The same strength applied to the torch generator and to its exported graph: the same tiles."""
    import onnx
    import onnxruntime as ort

    from museforge.plugins.image.tiles_gan import TilesGenerator, emphasise_kind

    torch.manual_seed(5)
    generator = TilesGenerator().eval()
    for name, p in generator.named_parameters():
        if ".norm." in name:
            torch.nn.init.normal_(p)
    noise = torch.randn(3, 32, 4, 4)
    kind, look = torch.tensor([0, 1, 1]), torch.tensor([2, 0, 5])
    path = tmp_path / "tiles.onnx"
    torch.onnx.export(generator, (noise, kind, look), str(path), input_names=["noise", "kind", "look"],
                      output_names=["image"], opset_version=17, dynamo=False)
    emphasise_kind(generator, 0.3)
    with torch.no_grad():
        expected = generator(noise, kind, look).numpy()
    edited = emphasised_graph(onnx.load(str(path)), 0.3)
    session = ort.InferenceSession(edited.SerializeToString(), providers=["CPUExecutionProvider"])
    [got] = session.run(["image"], {"noise": noise.numpy(), "kind": kind.numpy(), "look": look.numpy()})
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_derived_version_records_its_parent_and_is_never_overwritten(tmp_path: Path) -> None:
    import onnx

    parent = MODELS_DIR / str(Manifest.read(served_version(MODELS_DIR)).training["derived_from_version"])
    written = derive_version(parent, tmp_path, 9, quick=True)
    manifest = Manifest.read(written)
    assert manifest.version == 9 and manifest.quick
    assert manifest.training["derived_from_version"] == int(parent.name)
    assert manifest.training_data == Manifest.read(parent).training_data  # licences carried over
    strength = manifest.training["hyperparameters"]["kind_emphasis"]
    again = emphasised_graph(onnx.load(str(parent / "model.onnx")), strength)
    assert onnx.load(str(written / "model.onnx")).graph.initializer == again.graph.initializer
    with pytest.raises(FileExistsError):
        derive_version(parent, tmp_path, 9, quick=True)
    with pytest.raises(ValueError, match="already has a kind emphasis"):
        derive_version(served_version(MODELS_DIR), tmp_path, 10, quick=True)

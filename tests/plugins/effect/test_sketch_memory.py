"""The colour memory of effect.sketch: what it retrieves, its graph, and the version it derives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from museforge.plugins.effect.sketch import MODELS
from museforge.plugins.effect.sketch_data import sketch_train
from museforge.plugins.effect.sketch_region_colours import DRAW_OUTPUT, NONE, PALETTE_OUTPUT, SHARE_POWER
from museforge.runtime.manifest import Manifest, verify
from tests.models import served_version

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.train


def test_a_training_drawing_finds_itself_and_its_own_colours() -> None:
    from museforge.plugins.effect.sketch_memory import ColourMemory, colour_answers

    pairs = sketch_train().subset(np.arange(40))
    memory = ColourMemory(pairs).eval()
    lines = torch.from_numpy(pairs.unit_lines()[:8])
    with torch.no_grad():
        # Among its neighbours (OpenMoji has drawings with the same line art, so not always the first).
        assert all(i in row for i, row in enumerate(memory.neighbours(lines).tolist()))
        shares = memory(lines).numpy()
    assert shares.shape == (8, NONE + 1, 64, 64)
    assert np.allclose(shares.sum(axis=1), 1.0)
    own = colour_answers(pairs.subset(np.arange(8))).reshape(8, 32, 32)
    at = np.take_along_axis(shares[:, :, ::2, ::2], own[:, None].astype(np.int64), axis=1)[:, 0]
    assert at.min() >= 1 / 5 - 1e-6  # one neighbour of five, itself, answers its own colour everywhere


def test_the_ranked_memory_keeps_the_shape_neighbours_whose_colour_mix_is_nearest_the_guess() -> None:
    from torch import Tensor, nn

    from museforge.plugins.effect import sketch_memory as memories
    from museforge.plugins.effect.sketch_colour_mix import colour_mix_of

    pairs = sketch_train().subset(np.arange(120))
    mixes = torch.from_numpy(colour_mix_of(memories.colour_answers(pairs)))

    class Guess(nn.Module):  # a guess that is drawing k's own mix, whatever the sketch
        def __init__(self, k: int) -> None:
            super().__init__()
            self.logits = torch.log(mixes[k] + 1e-6)

        def forward(self, lines: Tensor) -> Tensor:
            return self.logits.expand(len(lines), -1)

    lines = torch.from_numpy(pairs.unit_lines()[:8])
    by_shape = memories.ColourMemory(pairs).eval()
    closer = 0
    with torch.no_grad():
        for row in range(len(lines)):
            sketch = lines[row:row + 1]
            plain = by_shape.neighbours(sketch)[0].tolist()
            k = 40 + row  # some other drawing's colours as the guess
            kept = memories.RankedColourMemory(pairs, Guess(k)).eval().neighbours(sketch)[0].tolist()
            assert len(set(kept)) == memories.NEIGHBOURS < memories.CANDIDATES
            # Ranking trades shape for colour: never further from the guess in total than the plain five.
            apart = {name: float((0.5 * (mixes[ids] - mixes[k]).abs().sum(dim=1)).sum())
                     for name, ids in (("kept", kept), ("plain", plain))}
            assert apart["kept"] <= apart["plain"] + 1e-5
            closer += apart["kept"] < apart["plain"] - 0.1
    assert closer >= len(lines) // 2


def test_the_served_version_has_a_memory_and_version_3_is_version_2_with_one_beside_it() -> None:
    served = Manifest.read(served_version(MODELS / "sketch"))
    assert [o.name for o in served.outputs] == ["image", PALETTE_OUTPUT, DRAW_OUTPUT]
    assert served.training["hyperparameters"]["colour_memory"]["drawings"] == 1858
    version = MODELS / "sketch" / "3"
    manifest = Manifest.read(version)
    assert manifest.training["derived_from_version"] == 2
    assert [o.name for o in manifest.outputs] == ["image", PALETTE_OUTPUT]
    memory = manifest.training["hyperparameters"]["colour_memory"]
    assert memory["drawings"] == 1858 and memory["parity_max_difference"] <= 1e-5
    _, data = verify(version)
    _, parent = verify(MODELS / "sketch" / "2")
    merged = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    alone = ort.InferenceSession(parent, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(4)
    feed = {"lines": (rng.random((3, 1, 64, 64)) > 0.9).astype(np.float32),
            "hints": np.zeros((3, 5, 64, 64), np.float32),
            "style": rng.standard_normal((3, 8)).astype(np.float32)}
    image, shares = merged.run(["image", PALETTE_OUTPUT], feed)
    assert np.array_equal(image, alone.run(["image"], feed)[0])  # version 2's network, untouched
    assert np.allclose(shares.sum(axis=1), 1.0)


def test_a_quick_derivation_records_its_parent_and_replaces_a_memory_the_parent_had(tmp_path: Path) -> None:
    from museforge.plugins.effect.sketch_memory import derive_version

    written = derive_version(MODELS / "sketch" / "2", tmp_path, quick=True)
    manifest = Manifest.read(written)
    assert written == tmp_path / "1" and manifest.quick
    memory = manifest.training["hyperparameters"]["colour_memory"]
    assert memory["drawings"] == 48 and memory["parity_max_difference"] <= 1e-5
    assert memory["ranked_by_colour_mix"]["candidates"] == 20 and not memory["replaced_parent_memory"]
    assert [o.name for o in manifest.outputs] == ["image", PALETTE_OUTPUT, DRAW_OUTPUT]
    [data] = manifest.training_data
    assert data.licence == "CC-BY-SA-4.0"
    assert "model_colour_error_clean" in manifest.metrics
    with pytest.raises(FileExistsError):
        derive_version(MODELS / "sketch" / "2", tmp_path, 1, quick=True)
    # From a version with a memory: its network kept node for node, the memory replaced, one palette.
    again = Manifest.read(derive_version(written, tmp_path, quick=True))
    assert again.training["derived_from_version"] == 1
    assert again.training["hyperparameters"]["colour_memory"]["replaced_parent_memory"]
    assert [o.name for o in again.outputs] == ["image", PALETTE_OUTPUT, DRAW_OUTPUT]


def test_version_5_is_version_4s_network_beside_a_ranked_memory_with_its_draw_rule() -> None:
    manifest = Manifest.read(MODELS / "sketch" / "5")
    assert manifest.training["derived_from_version"] == 4
    memory = manifest.training["hyperparameters"]["colour_memory"]
    assert memory["replaced_parent_memory"] and memory["parity_max_difference"] <= 1e-5
    assert memory["ranked_by_colour_mix"]["steps"] == 3000
    _, data = verify(MODELS / "sketch" / "5")
    _, parent = verify(MODELS / "sketch" / "4")
    ranked = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    plain = ort.InferenceSession(parent, providers=["CPUExecutionProvider"])
    pairs = sketch_train().subset(np.arange(6))
    rng = np.random.default_rng(5)
    feed = {"lines": pairs.unit_lines(), "hints": np.zeros((6, 5, 64, 64), np.float32),
            "style": rng.standard_normal((6, 8)).astype(np.float32)}
    image, shares, power = ranked.run(["image", PALETTE_OUTPUT, DRAW_OUTPUT], feed)
    assert np.array_equal(image, plain.run(["image"], feed)[0])
    assert np.allclose(shares.sum(axis=1), 1.0) and np.array_equal(power, np.full(6, SHARE_POWER, np.float32))
    # The ranked memory answers other neighbours than version 4's for some of them.
    assert not np.array_equal(shares, plain.run([PALETTE_OUTPUT], feed)[0])


def test_without_memory_keeps_the_network_and_drops_the_palette() -> None:
    import onnx

    from museforge.plugins.effect.sketch_memory import without_memory

    _, data = verify(MODELS / "sketch" / "4")
    whole = onnx.load_from_string(data)
    network = without_memory(whole)
    assert [o.name for o in network.graph.output] == ["image"]
    assert network.ir_version == whole.ir_version
    assert len(network.graph.node) < len(whole.graph.node)
    rng = np.random.default_rng(7)
    feed = {"lines": (rng.random((2, 1, 64, 64)) > 0.9).astype(np.float32),
            "hints": np.zeros((2, 5, 64, 64), np.float32),
            "style": rng.standard_normal((2, 8)).astype(np.float32)}
    alone = ort.InferenceSession(network.SerializeToString(), providers=["CPUExecutionProvider"])
    both = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert np.array_equal(alone.run(["image"], feed)[0], both.run(["image"], feed)[0])


def test_the_command_names_a_missing_version_and_says_why_it_refuses(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from museforge.plugins.effect.sketch_memory import main

    with pytest.raises(SystemExit) as exited:
        main(["--from-version", "99"])
    assert exited.value.code == 2 and "no effect.sketch version 99" in capsys.readouterr().err
    (tmp_path / "1").mkdir()
    newest = served_version(MODELS / "sketch").name
    refused = ["--from-version", newest, "--quick", "--output", str(tmp_path), "--version-number", "1"]
    assert main(refused) == 1
    assert "exists" in capsys.readouterr().err
    assert not any((tmp_path / "1").iterdir())

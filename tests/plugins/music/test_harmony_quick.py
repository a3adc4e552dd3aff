"""music.harmony's recipe runs end to end in quick mode; the served constants match the network."""

from __future__ import annotations

from pathlib import Path

from museforge.plugins.music.harmony_features import HIDDEN, LOWER_VOICES, PIECE_INPUTS, STEP_INPUTS, classes
from museforge.plugins.music.melody import HARMONY_MODELS_DIR
from tests.models import quick_export, shipped_session


def test_quick_export(tmp_path: Path) -> None:
    manifest = quick_export("music.harmony", tmp_path / "harmony", 600)
    assert [t.name for t in manifest.inputs] == [*STEP_INPUTS, *PIECE_INPUTS, "state"]
    assert [t.name for t in manifest.outputs] == [*LOWER_VOICES, "next_state"]
    assert {"model", "baseline", "bach", "nll_held_out"} <= set(manifest.metrics)
    assert any("Bach" in t.name for t in manifest.training_data)


def test_served_shapes_match_the_features() -> None:
    session = shipped_session(HARMONY_MODELS_DIR / "1")
    outputs = {o.name: o.shape for o in session.get_outputs()}
    for voice in LOWER_VOICES:
        assert outputs[voice][-1] == classes(voice)
    assert outputs["next_state"][1:] == [1, HIDDEN]

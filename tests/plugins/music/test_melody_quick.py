"""music.melody's recipe runs end to end in quick mode, and the served constants match the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from museforge.plugins.music import melody
from museforge.plugins.music.tokens import METRES, STYLES
from tests.models import quick_export, shipped_session


def test_training_on_non_commercial_data_is_refused_unless_allowed(tmp_path: Path) -> None:
    refused = subprocess.run([sys.executable, "-m", "museforge.cli", "export", "music.melody", "--quick",
                              "--output", str(tmp_path / "melody"), "--no-progress"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert "may not be used commercially" in refused.stderr and "--allow-noncommercial" in refused.stderr
    assert "Essen Folksong Collection" in refused.stderr
    assert not (tmp_path / "melody").exists()  # refused before any training


def test_quick_export(tmp_path: Path) -> None:
    out = tmp_path / "melody"
    manifest = quick_export("music.melody", out, 900, "--allow-noncommercial")
    essen = [t for t in manifest.training_data if "Essen" in t.name]
    assert essen and essen[0].commercial_use is False  # the licence travels with the model
    assert [t.name for t in manifest.inputs] == ["token", "position", "bars_left", "style", "tonic", "mode",
                                                 "metre", "state"]
    assert [t.name for t in manifest.outputs] == ["logits", "next_state"]
    for key in ("nll_model", "nll_bigram", "style_accuracy_generated", "in_scale_generated"):
        assert key in manifest.metrics
    assert set(manifest.metrics["per_style"]) == set(STYLES)


def test_serving_constants_match_the_network() -> None:
    from museforge.plugins.music.melody_net import HIDDEN, LAYERS

    assert melody.STATE_SHAPE == (LAYERS, HIDDEN)
    served = shipped_session(melody.MODELS_DIR / "1")
    state = next(i for i in served.get_inputs() if i.name == "state")
    assert state.shape[1:] == [LAYERS, HIDDEN]  # batch first: the server can batch requests
    offered = {m for metres in melody.STYLE_METRES.values() for m in metres}
    assert offered <= {f"{n}/{d}" for n, d in METRES}

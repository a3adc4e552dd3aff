"""``museforge export <model> --from-feedback``: a version tuned on a studio's ratings is written
only when it wins the held-out A/B, and its graph is the old one on a moved latent prior."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import json_format
from PIL import Image

from museforge.client import artifact_ref
from museforge.engine.catalogue import Engine
from museforge.feedback.interactions import STARS
from museforge.feedback.store import FeedbackStore
from museforge.runtime.manifest import Manifest
from tests.core.test_cli import museforge

FACES = Path(__file__).parents[2] / "plugins" / "image" / "models" / "faces" / "1"


@pytest.fixture(scope="module")
def engine() -> Engine:
    made = Engine()
    made.settings.plugins = ["image"]
    return made.start()


def brightness(data: bytes) -> float:
    return float(np.asarray(Image.open(io.BytesIO(data)), dtype=np.float64).mean() / 255.0)


def studio(engine: Engine, path: Path, tastes: list[float]) -> None:
    """One rater per taste, in order, each giving 24 faces stars by brightness (+1: bright is
    better, -1: dark is better); the newest quarter of the events is what judges."""
    store = FeedbackStore(path)
    for number, taste in enumerate(tastes):
        artifacts = engine.generate("image.faces", {"size": 32}, seed=1000 + number, count=24)
        seen = np.array([brightness(a.data) for a in artifacts])
        ranks = np.argsort(np.argsort(taste * seen))  # 0 = worst for this rater
        for artifact, rank in zip(artifacts, ranks, strict=True):
            ref = json_format.MessageToDict(artifact_ref(artifact.data, artifact.metadata))
            stars = 1 + int(rank) * 5 // len(artifacts)
            store.record("", f"rater-{number}", STARS, ref["sha256"], {"artifact": ref, "stars": stars})
    store.close()


def faces_mean(model: Path, z: np.ndarray) -> float:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return float(session.run(None, {"z": z})[0].mean())


def test_a_studio_that_likes_bright_faces_gets_a_brighter_version(engine: Engine, tmp_path: Path) -> None:
    studio(engine, tmp_path / "feedback.sqlite3", [1.0] * 12)
    out = tmp_path / "models"
    result = museforge("export", "image.faces", "--from-feedback", str(tmp_path / "feedback.sqlite3"),
                       "--output", str(out), "--plugins", "image")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout[:result.stdout.rindex("}") + 1])
    assert report["promoted"] and report["ab_win"] >= 0.6 and report["version"] == 2
    manifest = Manifest.read(out / "2")
    assert manifest.version == 2 and manifest.metrics["feedback_ab"]["win"] == report["ab_win"]
    assert manifest.training["feedback_tuning"]["tuned_from"]["version"] == 1
    assert manifest.training_data == Manifest.read(FACES).training_data  # what it learnt from is still named
    z = np.random.default_rng(0).standard_normal((64, 128)).astype(np.float32)
    assert faces_mean(out / "2" / "model.onnx", z) > faces_mean(FACES / "model.onnx", z)


def test_a_version_that_loses_the_held_out_comparison_is_refused(engine: Engine, tmp_path: Path) -> None:
    # The studio's taste turned: the older raters liked bright faces, the newest like dark ones.
    studio(engine, tmp_path / "feedback.sqlite3", [1.0] * 9 + [-1.0] * 3)
    out = tmp_path / "models"
    result = museforge("export", "image.faces", "--from-feedback", str(tmp_path / "feedback.sqlite3"),
                       "--output", str(out), "--plugins", "image")
    assert result.returncode == 1
    assert "not written; version 1 stays" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_too_little_feedback_and_a_missing_database_are_said_plainly(engine: Engine, tmp_path: Path) -> None:
    studio(engine, tmp_path / "feedback.sqlite3", [1.0])
    result = museforge("export", "image.faces", "--from-feedback", str(tmp_path / "feedback.sqlite3"),
                       "--output", str(tmp_path / "models"), "--plugins", "image")
    assert result.returncode == 1 and "3 such users are needed" in result.stderr
    result = museforge("export", "image.faces", "--from-feedback", str(tmp_path / "nowhere.sqlite3"),
                       "--plugins", "image")
    assert result.returncode == 2 and "no feedback database" in result.stderr
    result = museforge("export", "image.digits", "--from-feedback", str(tmp_path / "feedback.sqlite3"),
                       "--plugins", "image")
    assert result.returncode == 1 and "no latent generator's model" in result.stderr


def test_a_refusal_names_each_rule_that_failed() -> None:
    from museforge.export.feedback_tuning import promoted, refusal

    split = [0.9, 0.9, 0.2, 0.2, 0.8]  # the median wins, but only three of five prefer it at all
    assert promoted(split, 0.6) is False
    assert refusal(split, 0.6) == "was preferred by 3 of 5 held-out users (needs 75% of them)"
    losing = [0.4, 0.45, 0.5]
    assert refusal(losing, 0.6) == ("won 45.0% of the held-out A/B comparisons (needs 60%) and was "
                                    "preferred by 0 of 3 held-out users (needs 75% of them)")
    assert refusal([0.9, 0.9], 0.6) == "had 2 held-out users to judge it (needs 3)"
    assert promoted([0.7, 0.8, 0.9, 0.65], 0.6) and refusal([0.7, 0.8, 0.9, 0.65], 0.6) == "was promoted"

"""``museforge export MODEL --from-feedback`` honours --version-number, refuses --quick, and says
when --owner names an owner without events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from museforge.engine.catalogue import Engine
from museforge.runtime.manifest import Manifest
from tests.core.test_cli import museforge

pytest.importorskip("onnx")  # the training extra


@pytest.fixture(scope="module")
def engine() -> Engine:
    made = Engine()
    made.settings.plugins = ["image"]
    return made.start()


def test_the_version_number_is_the_version_written(engine: Engine, tmp_path: Path) -> None:
    from tests.export.test_feedback_tuning import studio

    database, out = tmp_path / "feedback.sqlite3", tmp_path / "models"
    studio(engine, database, [1.0] * 12)
    result = museforge("export", "image.faces", "--from-feedback", str(database), "--output", str(out),
                       "--version-number", "7", "--plugins", "image")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout[:result.stdout.rindex("}") + 1])["version"] == 7
    assert Manifest.read(out / "7").version == 7 and not (out / "2").exists()
    again = museforge("export", "image.faces", "--from-feedback", str(database), "--output", str(out),
                      "--version-number", "7", "--plugins", "image")  # never over a version
    assert again.returncode == 2 and "name another --version-number" in again.stderr


def test_quick_and_an_owner_without_events_are_refused(engine: Engine, tmp_path: Path) -> None:
    from tests.export.test_feedback_tuning import studio

    database = tmp_path / "feedback.sqlite3"
    studio(engine, database, [1.0])
    quick = museforge("export", "image.faces", "--quick", "--from-feedback", str(database),
                      "--output", str(tmp_path / "models"), "--plugins", "image")
    assert quick.returncode == 2 and "--quick does not go with --from-feedback" in quick.stderr
    nobody = museforge("export", "image.faces", "--from-feedback", str(database), "--owner", "nosuchkey",
                       "--output", str(tmp_path / "models"), "--plugins", "image")
    assert nobody.returncode == 1 and "keeps no feedback events of owner 'nosuchkey'" in nobody.stderr
    assert not (tmp_path / "models").exists()

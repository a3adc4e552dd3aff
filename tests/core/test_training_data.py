"""The copyright question: every model says what it learnt from and under which licence, in its
manifest, in ListGenerators / ListEffects (so `museforge generators --json`), and in the
provenance of every artifact it makes."""

from __future__ import annotations

import json
from pathlib import Path

from museforge.client import Client
from museforge.engine.codecs.encoders import read_png_provenance
from museforge.plugins.image.faces import MODELS_DIR as FACES_DIR
from museforge.runtime.manifest import Manifest, TrainingData

ROOT = Path(__file__).resolve().parents[2]


def shipped() -> list[Manifest]:
    return [Manifest.read(p.parent) for p in sorted(ROOT.glob("plugins/*/models/*/*/manifest.json"))]


def test_every_shipped_model_names_its_training_data_and_licences() -> None:
    manifests = shipped()
    assert len(manifests) >= 12
    for manifest in manifests:
        assert manifest.training_data, f"{manifest.name} v{manifest.version} names no training data"
        for data in manifest.training_data:
            assert data.name and data.licence, (manifest.name, data)


def test_non_commercial_data_is_flagged() -> None:
    melody = next(m for m in shipped() if m.name == "music.melody")
    essen = [t for t in melody.training_data if "Essen" in t.name]
    assert essen and essen[0].commercial_use is False and "non-commercial" in essen[0].licence


def test_listings_carry_each_models_training_data(client: Client) -> None:
    [faces] = [g for g in client.generators() if g.name == "image.faces"]
    [model] = faces.models
    expected = Manifest.read(FACES_DIR / model.version).training_data
    assert [(t.name, t.licence, t.attribution) for t in model.training_data] == [
        (t.name, t.licence, t.attribution) for t in expected]
    [melody] = [g for g in client.generators() if g.name == "music.melody"]
    flags = {t.name.split(",")[0]: t.commercial_use if t.HasField("commercial_use") else None
             for t in melody.models[0].training_data}
    assert flags["Essen Folksong Collection"] is False
    [upscale] = [e for e in client.effects() if e.name == "effect.upscale"]
    assert all(m.training_data for m in upscale.models)


def test_artifacts_carry_the_licences_of_what_made_them(client: Client) -> None:
    reply = client.generate("image.faces", {}, seed=3)
    provenance = read_png_provenance(reply.artifacts[0].data)
    learnt = json.loads(provenance["training_data"])
    [model] = json.loads(provenance["models"])
    expected = Manifest.read(FACES_DIR / str(model["version"])).training_data
    assert learnt == [{"model": "image.faces", "data": t.name, "licence": t.licence,
                       "attribution": t.attribution} for t in expected]


def test_a_manifest_without_training_data_is_written_as_before(tmp_path: Path) -> None:
    manifest = Manifest.read(FACES_DIR / "1")
    manifest.training_data = []
    manifest.write(tmp_path)
    assert "training_data" not in json.loads((tmp_path / "manifest.json").read_text())
    manifest.training_data = [TrainingData(name="x", licence="CC0-1.0", commercial_use=True)]
    manifest.write(tmp_path)
    assert Manifest.read(tmp_path).training_data[0].commercial_use is True


def test_a_melody_says_it_learnt_from_non_commercial_data(client: Client) -> None:
    from museforge.plugins.music.midi_file import read_midi_provenance

    reply = client.generate("music.melody", {"style": "folk", "bars": 2}, seed=1, fmt="mid")
    learnt = json.loads(read_midi_provenance(reply.artifacts[0].data)["training_data"])
    essen = [t for t in learnt if t["data"].startswith("Essen")]
    assert essen and essen[0]["licence"].startswith("non-commercial")
    # The harmony model that wrote the chords and bass is named with what it learnt from.
    harmony = [t for t in learnt if t["model"] == "music.harmony"]
    assert harmony and "four-part chorales, all four voices" in harmony[0]["data"]
    assert {m["name"] for m in json.loads(read_midi_provenance(reply.artifacts[0].data)["models"])} == {
        "music.melody", "music.harmony"}

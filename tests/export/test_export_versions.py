"""`museforge export` and existing versions: the next free one by default, a rewrite only with
--replace, never another model's folder; and a manifest that would not describe its graph is
refused before anything is written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from museforge.plugins.image.digits import MODELS_DIR as DIGITS
from museforge.plugins.image.texture import MODELS_DIR as TEXTURE
from museforge.runtime.manifest import Manifest

# A studio's recipes, installed as pip leaves a distribution: `studio.flip` is a plain linear
# layer; `studio.half` declares its input float16 though the module takes (and the graph has) float32.
STUDIO = '''
import os
from pathlib import Path

import museforge

MODELS = Path(os.environ["STUDIO_MODELS"])


@museforge.hookimpl
def register_recipes(register):
    register(museforge.Recipe(name="studio.flip", description="a linear layer",
                              build="studio_versions:flip", models_dir=MODELS / "flip"))
    register(museforge.Recipe(name="studio.half", description="declared float16, is float32",
                              build="studio_versions:half", models_dir=MODELS / "half"))


def flip(ctx):
    return trained(ctx, "float32")


def half(ctx):
    return trained(ctx, "float16")


def trained(ctx, dtype):
    import numpy as np
    import torch

    from museforge.export.pipeline import TrainedModel
    from museforge.export.spec import ExportSpec, TensorSpec

    spec = ExportSpec(inputs=(TensorSpec("x", dtype, ("batch", 8)),),
                      outputs=(TensorSpec("y", "float32", ("batch", 8)),))
    return TrainedModel(module=torch.nn.Linear(8, 8).eval(), spec=spec,
                        make_inputs=lambda rng, batch: {"x": rng.random((batch, 8), dtype=np.float32)},
                        dataset={"source": "none", "fingerprint": f"seed-{ctx.seed}"})
'''


@pytest.fixture
def studio(tmp_path: Path) -> dict[str, str]:
    """The environment of a `museforge` whose only plugin is the studio's, its models in tmp_path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "studio_versions.py").write_text(textwrap.dedent(STUDIO))
    info = site / "studio_versions-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: studio-versions\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[museforge]\nversions = studio_versions\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
            "MUSEFORGE_PLUGINS": "versions", "STUDIO_MODELS": str(tmp_path / "shipped")}


def export(*args: str, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "museforge.cli", "export", *args, "--no-progress"],
                          capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, **(env or {})})


def versions(folder: Path) -> dict[str, bytes]:
    """Each version folder's manifest, as bytes (a rewrite changes its digest and seed)."""
    return {p.name: (p / "manifest.json").read_bytes() for p in sorted(folder.iterdir()) if p.is_dir()}


def test_an_export_adds_the_next_free_version_and_rewrites_one_only_with_replace(
        studio: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    for expected in ("1", "2"):
        made = export("studio.flip", "--output", str(out), "--seed", expected, env=studio)
        assert made.returncode == 0 and f"{out / expected / 'model.onnx'}" in made.stdout, made.stderr
    before = versions(out)
    assert list(before) == ["1", "2"] and Manifest.read(out / "1").seed == 1

    taken = export("studio.flip", "--output", str(out), "--version-number", "1", "--seed", "7", env=studio)
    assert taken.returncode == 2 and "Traceback" not in taken.stderr, taken.stderr
    assert (f"{out / '1'} exists: versions are never overwritten unless --replace is given; choose another "
            "--version-number (the next free one is 3)") in taken.stderr
    assert versions(out) == before

    replaced = export("studio.flip", "--output", str(out), "--version-number", "1", "--seed", "7",
                      "--replace", env=studio)
    assert replaced.returncode == 0, replaced.stderr
    assert Manifest.read(out / "1").seed == 7 and versions(out)["2"] == before["2"]
    newest = export("studio.flip", "--output", str(out), "--seed", "8", "--replace", env=studio)
    assert newest.returncode == 0 and Manifest.read(out / "2").seed == 8 and list(versions(out)) == ["1", "2"]


def test_a_plain_export_still_rebuilds_the_shipped_model_in_place(studio: dict[str, str],
                                                                  tmp_path: Path) -> None:
    shipped = tmp_path / "shipped" / "flip"
    for seed in ("1", "2"):  # the first writes version 1, the second rebuilds it
        rebuilt = export("studio.flip", "--seed", seed, env=studio)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert list(versions(shipped)) == ["1"] and Manifest.read(shipped / "1").seed == int(seed)
    named = export("studio.flip", "--version-number", "1", env=studio)  # naming it is no say-so
    assert named.returncode == 2 and "the next free one is 2" in named.stderr, named.stderr
    quick = export("studio.flip", "--quick", env=studio, cwd=tmp_path)  # the scratch folder: a new one
    assert quick.returncode == 0 and (tmp_path / "museforge-export" / "studio.flip" / "1").is_dir()


def test_an_export_never_writes_into_a_folder_of_another_models_versions(
        studio: dict[str, str], tmp_path: Path) -> None:
    copy = tmp_path / "texture"
    shutil.copytree(TEXTURE, copy)
    before = versions(copy)
    into = export("studio.flip", "--output", str(copy), env=studio)
    assert into.returncode == 2 and "Traceback" not in into.stderr, into.stderr
    assert f"{copy} holds another model's versions: 1 (image.texture)" in into.stderr
    over = export("studio.flip", "--output", str(copy), "--version-number", "1", "--replace", env=studio)
    assert over.returncode == 2 and f"{copy / '1'} is version 1 of image.texture" in over.stderr, over.stderr
    assert "--replace or not" in over.stderr and versions(copy) == before


def test_a_quick_export_over_a_copy_of_the_shipped_digits_is_refused_before_training(tmp_path: Path) -> None:
    copy = tmp_path / "shipcopy"
    shutil.copytree(DIGITS, copy)
    before = versions(copy)
    newest = max(before, key=int)
    refused = export("image.digits", "--quick", "--output", str(copy), "--version-number", newest)
    assert refused.returncode == 2 and "wrote" not in refused.stdout, refused.stderr
    assert (f"{copy / newest} exists: versions are never overwritten unless --replace is given"
            in refused.stderr) and f"the next free one is {int(newest) + 1}" in refused.stderr
    assert versions(copy) == before


def test_a_declaration_the_graph_does_not_have_is_refused_naming_it(studio: dict[str, str],
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = export("studio.half", "--output", str(out), env=studio)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    # The server's own words at load, and the recipe's declaration at fault.
    assert "input x is float16 in manifest.json, float32 in the graph" in result.stderr
    assert "TensorSpec('x', 'float16', ('batch', 8))" in result.stderr and "nothing written" in result.stderr
    assert not out.exists()

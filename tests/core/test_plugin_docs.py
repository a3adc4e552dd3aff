"""docs/plugins.md's sample plugin, pasted verbatim, loaded alone through museforge.testing and served.

The fenced python blocks that start with ``# studio_stripes/__init__.py`` are put together
into one module beside the scaffold's model, as a studio would, so the docs cannot drift
from what the server accepts.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from museforge.cli.scaffold import TEMPLATES
from museforge.testing import (  # noqa: F401 - pytest fixtures, taken by name below
    PluginChoice,
    PluginLoadError,
    Served,
    museforge_engine,
    museforge_server,
    museforge_settings,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
MARK = "# studio_stripes/__init__.py"
ENCODERS_HOOK = "@museforge.hookimpl\ndef register_encoders"
EXR_MAGIC = b"\x76\x2f\x31\x01"


def sample_blocks() -> list[str]:
    blocks = re.findall(r"^```python\n(.*?)^```", DOCS.read_text("utf-8"), re.MULTILINE | re.DOTALL)
    return [block for block in blocks if block.startswith(MARK)]


def load_sample(root: Path, source: str) -> ModuleType:
    """``source`` as the package ``<unique>/__init__.py`` with the scaffold's model as studio.contrast."""
    name = f"docsample_{uuid.uuid4().hex[:12]}"
    package = root / name
    version = package / "models" / "contrast" / "1"
    version.mkdir(parents=True)
    (package / "__init__.py").write_text(source, "utf-8")
    shutil.copyfile(TEMPLATES / "model" / "model.onnx", version / "model.onnx")
    manifest = json.loads((TEMPLATES / "model" / "manifest.json").read_text("utf-8"))
    (version / "manifest.json").write_text(json.dumps({**manifest, "name": "studio.contrast"}), "utf-8")
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the parameter models' types through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def museforge_plugins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[PluginChoice]]:
    """The docs' sample plugin alone, as the docs' conftest loads it; parametrized variants break it."""
    variant = getattr(request, "param", "as documented")
    if variant == "not installed":
        yield ["no_such_studio_plugin"]
        return
    blocks = sample_blocks()
    if variant == "without its encoders":  # what the docs' generator sample was before
        blocks = [blocks[0].split(ENCODERS_HOOK)[0], *blocks[1:]]
    module = load_sample(tmp_path, "\n".join(blocks))
    yield [("docsample", module)]
    sys.modules.pop(module.__name__, None)


def test_the_docs_sample_is_the_generator_effect_and_recipe_sections() -> None:
    blocks = sample_blocks()
    assert len(blocks) == 3, "the register_generators, register_effects and register_recipes samples"
    assert ENCODERS_HOOK in blocks[0]


def test_the_docs_sample_plugin_generates_and_applies_when_served_alone(
    museforge_server: Served,  # noqa: F811 - the fixture imported above, taken as a plugin's test takes it
) -> None:
    client = museforge_server.client
    [listed] = [p for p in client.plugins() if p.name == "docsample"]
    assert not listed.error
    assert list(listed.generators) == ["studio.stripes"] and list(listed.effects) == ["studio.invert"]

    # The defaults (width 64) through the scaffold's model, which takes rows of 8 shades.
    [png] = client.generate("studio.stripes", {}, seed=7).artifacts
    pixels = np.asarray(Image.open(io.BytesIO(png.data)))
    assert pixels.shape == (64, 64)
    assert (pixels == pixels[0]).all()  # vertical stripes
    assert all(len(set(pixels[0, k * 8:(k + 1) * 8].tolist())) == 1 for k in range(8))
    [exr] = client.generate("studio.stripes", {"width": 40, "height": 8}, seed=7, fmt="exr").artifacts
    assert exr.data.startswith(EXR_MAGIC)

    [inverted] = client.apply_effect("studio.invert", [("stripes.png", png.data)], seed=1).artifacts
    back = np.asarray(Image.open(io.BytesIO(inverted.data)).convert("L")).astype(int)
    assert np.abs(back - (255 - pixels.astype(int))).max() <= 1
    [deep] = client.apply_effect("studio.invert", [png.data], fmt="exr").artifacts
    assert deep.data.startswith(EXR_MAGIC)


@pytest.mark.parametrize("museforge_plugins", ["without its encoders"], indirect=True)
def test_a_chosen_plugin_that_fails_to_load_fails_the_server_fixture(
    request: pytest.FixtureRequest, museforge_plugins: list[PluginChoice]
) -> None:
    with pytest.raises(PluginLoadError) as caught:
        request.getfixturevalue("museforge_server")
    said = str(caught.value)
    assert said.startswith("plugin 'docsample' did not load: ")
    assert "generator studio.stripes declares format 'exr' with no image encoder registered" in said
    assert list(caught.value.problems) == ["docsample"]


@pytest.mark.parametrize("museforge_plugins", ["without its encoders", "not installed"], indirect=True)
def test_a_chosen_plugin_that_fails_to_load_fails_the_engine_fixture(
    request: pytest.FixtureRequest, museforge_plugins: list[PluginChoice]
) -> None:
    with pytest.raises(PluginLoadError) as caught:
        request.getfixturevalue("museforge_engine")
    [(name, error)] = caught.value.problems.items()
    if name == "docsample":
        assert "declares format 'exr' with no image encoder registered" in error
    else:
        assert name == "no_such_studio_plugin" and "no installed plugin is called" in error

"""``museforge plugin new NAME``: a pip-installable plugin package to start from.

The package has the entry point, a generator serving a tiny ONNX model through the
runtime, the recipe that trained that model (``museforge export NAME.contrast``), a
README and tests on ``museforge.testing``'s fixtures. The model file is the template's own export
(``museforge/export/plugin_template/model/``), copied with its manifest renamed for the
new plugin; its sha256 is unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

from museforge import export as export_package

# Beside the export tooling it uses (museforge.export imports no torch until a recipe runs).
TEMPLATES = Path(export_package.__file__).parent / "plugin_template"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
TEMPLATE_NAME = "template"  # the name the shipped model was exported under


class ScaffoldError(ValueError):
    """The name or the target directory cannot be used; the message says why."""


def render(text: str, name: str) -> str:
    return (
        text.replace("{{name}}", name).replace("{{module}}", name).replace("{{dist}}", name.replace("_", "-"))
    )


def name_taken(name: str) -> str:
    """Why ``name`` cannot be a plugin's package and entry point ('' if it can): installed, the
    package would shadow a module or be shadowed by it; as an entry point it would clash."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "is a Python keyword"
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        return "is a module of Python's standard library, which the package would shadow"
    if importlib.util.find_spec(name) is not None:
        return "is already an importable module here (the package and it would shadow each other)"
    if any(ep.name == name for ep in metadata.entry_points(group="museforge")):
        return "is already the name of an installed museforge plugin"
    return ""


def new_plugin(name: str, parent: Path) -> Path:
    """Write the package ``parent/<name with dashes>/``; returns its directory."""
    if not NAME.match(name) or name == TEMPLATE_NAME:
        raise ScaffoldError(
            f"plugin name must be a lowercase Python identifier of 2-41 characters "
            f"(letters, digits, _), e.g. studio_stripes; got {name!r}"
        )
    taken = name_taken(name)
    if taken:
        raise ScaffoldError(f"{name!r} {taken}; choose another name, e.g. studio_{name}")
    root = parent / name.replace("_", "-")
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another name or directory")
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATES).with_suffix("")
        if relative.parts[0] == "package":
            relative = Path(name, *relative.parts[1:])
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(template.read_text("utf-8"), name), "utf-8")
    version = root / name / "models" / "contrast" / "1"
    version.mkdir(parents=True)
    shutil.copyfile(TEMPLATES / "model" / "model.onnx", version / "model.onnx")
    manifest = json.loads((TEMPLATES / "model" / "manifest.json").read_text("utf-8"))
    manifest["name"] = f"{name}.contrast"
    manifest["recipe"] = f"{name}.recipe:build"
    (version / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return root

"""Quality checks score the shipped ONNX models with onnxruntime alone: they never import torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quality_modules() -> list[str]:
    """Every built-in plugin's quality module, as an import name."""
    return sorted(f"museforge.plugins.{path.parent.name}.{path.stem}"
                  for path in (ROOT / "plugins").glob("*/*_quality.py"))


def quality_test_imports() -> list[str]:
    """The museforge modules the quality tests import (what scoring a shipped model needs)."""
    names: set[str] = set()
    for path in (ROOT / "tests" / "plugins").glob("*/test_*quality*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("museforge"):
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("museforge"))
    return sorted(names)


def test_there_is_a_quality_module_and_test_per_plugin() -> None:
    modules = quality_modules()
    assert {"effect", "image", "mesh", "music"} <= {m.split(".")[2] for m in modules}
    assert any(m.endswith("_quality") for m in quality_test_imports())


def test_quality_modules_and_what_their_tests_import_load_without_torch() -> None:
    # torch blocked outright: importing it anywhere raises ImportError in the child. A finder,
    # not sys.modules["torch"] = None: scipy looks torch up in sys.modules and trips on None.
    script = (
        "import importlib, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'torch':\n"
        "            raise ImportError(f'{name} is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'torch'))\n"
    )
    names = sorted({*quality_modules(), *quality_test_imports()})
    result = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"

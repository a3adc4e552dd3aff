"""The layers of the house hold: each package imports only what docs/architecture.md allows."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from .import_graph import SOURCES, ImportGraph, layer_violations


def test_the_source_tree_keeps_every_layer_rule() -> None:
    graph = ImportGraph.scan(SOURCES)
    assert len(graph.imports) > 150  # the scan saw the whole tree, not an empty folder
    problems = layer_violations(graph)
    assert not problems, "\n".join(problems)


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    """A small museforge-shaped tree: core/, plugins/ and export/ holding ``files``."""
    for name, text in {"core/__init__.py": "", "core/engine/__init__.py": "", "core/runtime/__init__.py": "",
                       "core/server/__init__.py": "", "core/server/app.py": "", "plugins/__init__.py": "",
                       "plugins/paint/__init__.py": "", "export/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return {"museforge": tmp_path / "core", "museforge.plugins": tmp_path / "plugins",
            "museforge.export": tmp_path / "export"}


@pytest.mark.parametrize(("files", "expected"), [
    ({"core/engine/catalogue.py": "import grpc\n"}, "museforge.engine.catalogue:1 imports grpc"),
    ({"core/engine/catalogue.py": "def f():\n    from ..server import app\n"},
     "museforge.engine.catalogue:2 imports museforge.server.app"),
    ({"core/runtime/sessions.py": "from ..engine.generator import ModelSource\n"},
     "museforge.runtime.sessions:1 imports museforge.engine.generator.ModelSource"),
    ({"core/feedback/__init__.py": "", "core/feedback/store.py": "from ..server.caller import caller_key\n"},
     "museforge.feedback.store:1 imports museforge.server.caller.caller_key"),
    ({"core/server/guard.py": "from ..gateway import app\n"},
     "museforge.server.guard:1 imports museforge.gateway"),
    ({"plugins/paint/gen.py": "from museforge.engine.catalogue import Engine\n",
      "core/engine/catalogue.py": "class Engine: ...\n"},
     "museforge.plugins.paint.gen:1 imports museforge.engine.catalogue.Engine: plugins use only the public"),
    ({"plugins/paint/__init__.py": "from . import net\n", "plugins/paint/net.py": "import torch\n"},
     "museforge.plugins.paint.net:1 imports torch, on the serving path "
     "(museforge.plugins.paint → museforge.plugins.paint.net)"),
    ({"core/server/app.py": "def train():\n    from museforge.export import pipeline\n"},
     "museforge.server.app:2 imports museforge.export.pipeline, on the serving path"),
])
def test_a_broken_rule_is_named_with_its_module_and_line(tmp_path: Path, files: dict[str, str],
                                                         expected: str) -> None:
    problems = layer_violations(ImportGraph.scan(_tree(tmp_path, files)))
    assert any(p.startswith(expected) for p in problems), problems


def test_what_the_rules_allow_passes(tmp_path: Path) -> None:
    allowed = {
        "core/engine/catalogue.py": "from ..runtime import sessions\nfrom ..config import Settings\n",
        "core/config.py": "Settings = dict\n",
        "core/runtime/sessions.py": "import numpy\n",
        "core/server/app.py": "import grpc\nfrom ..gateway import server\nfrom ..engine import catalogue\n",
        "core/gateway/__init__.py": "", "core/gateway/server.py": "from ..server import guard\n",
        "core/server/guard.py": "import grpc\n",
        "plugins/paint/__init__.py": "from museforge import hookimpl\nfrom . import gen\n",
        "plugins/paint/gen.py": "from museforge import Generator\n",
        # a recipe: named by string, never imported when serving
        "plugins/paint/recipe.py": "import torch\nfrom museforge.export.fit import fit\n",
        "core/engine/guarded.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import grpc\n",
    }
    assert layer_violations(ImportGraph.scan(_tree(tmp_path, allowed))) == []

"""`museforge plugin new`: the package it writes installs, passes its own tests, is served, and exports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from museforge.cli.scaffold import ScaffoldError, new_plugin
from museforge.client import Client
from tests.servers import ServeProcess


def run(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
        cwd=cwd,
    )


def test_a_scaffolded_plugin_installs_tests_serves_and_exports(tmp_path: Path) -> None:
    made = run("-m", "museforge.cli", "plugin", "new", "studio_stripes", "--dir", str(tmp_path), env={})
    assert made.returncode == 0, made.stderr
    root = Path(made.stdout.strip())
    assert (root / "pyproject.toml").is_file() and (root / "studio_stripes" / "recipe.py").is_file()
    site = tmp_path / "site"
    installed = run(
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--quiet",
        "--target",
        str(site),
        str(root),
        env={},
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    own_tests = run(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests"), env=env, cwd=tmp_path
    )
    assert own_tests.returncode == 0, own_tests.stdout[-2000:]
    assert "2 passed" in own_tests.stdout

    with ServeProcess(env=env) as server, Client(server.address, timeout=60) as client:
        plugins = {p.name: p for p in client.plugins()}
        assert (
            plugins["studio_stripes"].generators == ["studio_stripes.stripes"]
            and not plugins["studio_stripes"].error
        )
        reply = client.generate("studio_stripes.stripes", {"width": 40, "height": 8}, seed=5)
        assert reply.artifacts[0].data.startswith(b"\x89PNG")

    exported = run(
        "-m",
        "museforge.cli",
        "export",
        "studio_stripes.contrast",
        "--quick",
        "--output",
        str(tmp_path / "export"),
        "--no-progress",
        env=env,
    )
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert (tmp_path / "export" / "1" / "model.onnx").is_file()


def test_bad_names_and_existing_directories_are_refused(tmp_path: Path) -> None:
    for name in ("Studio", "1stripes", "a", "studio-stripes", "template"):
        with pytest.raises(ScaffoldError, match="lowercase Python identifier"):
            new_plugin(name, tmp_path)
    new_plugin("studio_stripes", tmp_path)
    with pytest.raises(ScaffoldError, match="already exists"):
        new_plugin("studio_stripes", tmp_path)
    # Names a package would clash with: museforge itself (installing it broke `import museforge`),
    # a module already importable, the standard library, a keyword, an installed plugin.
    for name, why in (("museforge", "already an importable module"), ("numpy", "already an importable"),
                      ("json", "standard library"), ("class", "keyword"),
                      ("image", "installed museforge plugin")):
        with pytest.raises(ScaffoldError, match=why):
            new_plugin(name, tmp_path)


def test_the_install_hint_is_a_path_pip_reads_as_local(tmp_path: Path) -> None:
    made = run("-m", "museforge.cli", "plugin", "new", "studio_stripes", env={}, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    # "pip install studio-stripes" would ask the package index for somebody else's package.
    assert "pip install ./studio-stripes " in made.stderr and "pip install studio-stripes" not in made.stderr

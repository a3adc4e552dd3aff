"""Installed plugins (real distributions under the ``museforge`` entry-point group) that exit, print or
take a name already taken: each is reported by name, and the server starts and serves the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from museforge.client import Client
from tests.servers import ServeProcess

STUDIO = '''
import numpy as np
from pydantic import BaseModel
import museforge

print("studio plugin loading")  # a plugin's chatter at import


class NoParams(BaseModel):
    pass


def fine(ctx, params, seed, count):
    for index in range(count):
        yield museforge.Media("image", np.zeros((4, 4), np.float32), index)


def exits(ctx, params, seed, count):
    raise SystemExit("usage: studio [-h] WIDTH")  # an argparse inside the plugin
    yield


def interrupted(ctx, params, seed, count):
    raise KeyboardInterrupt()
    yield


@museforge.hookimpl
def register_generators(register):
    for name, run in (("studio.fine", fine), ("studio.exits", exits), ("studio.interrupted", interrupted)):
        register(museforge.Generator(name, "image", NoParams, run, ("png",)))
'''

EXITS_AT_IMPORT = 'raise SystemExit("studio: no licence file")\n'

EXITS_IN_HOOK = '''
import museforge


@museforge.hookimpl
def register_generators(register):
    raise SystemExit(3)
'''


def install(site: Path, distribution: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A distribution as pip leaves it: its modules and a dist-info naming its entry points."""
    site.mkdir(exist_ok=True)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[museforge]\n" + "".join(f"{name} = {value}\n" for name, value in entry_points.items()))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    install(site, "studio-fine", {"fine": "studio_fine"}, {"studio_fine": STUDIO})
    install(site, "studio-broken", {"exits_at_import": "studio_exits_at_import",
                                    "exits_in_hook": "studio_exits_in_hook"},
            {"studio_exits_at_import": EXITS_AT_IMPORT, "studio_exits_in_hook": EXITS_IN_HOOK})
    # Names a built-in plugin and the core already have: the second is not even importable.
    install(site, "studio-takeover", {"image": "studio_fine", "museforge.core": "studio_no_such_module"}, {})
    return site


def environment(site: Path, plugins: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
            "MUSEFORGE_PLUGINS": plugins}


def test_plugins_that_exit_or_take_a_name_are_reported_and_the_rest_serves(site: Path) -> None:
    plugins = "fine,exits_at_import,exits_in_hook,image,museforge.core"
    with ServeProcess(env=environment(site, plugins)) as server, Client(server.address, timeout=60) as client:
        listed = {p.name: p for p in client.plugins()}
        assert listed["exits_at_import"].error == "import failed: SystemExit: studio: no licence file"
        assert listed["exits_in_hook"].error == "register_generators failed: SystemExit: 3"
        assert listed["image"].error == "" and listed["image"].source == "entrypoint:museforge"
        clash = listed["image (duplicate)"]
        assert clash.source == "entrypoint:studio-takeover" and clash.generators == []
        assert "a plugin named 'image' is already registered (entrypoint:museforge)" in clash.error
        assert listed["museforge.core"].source == "core" and listed["museforge.core"].error == ""
        assert "already registered (core)" in listed["museforge.core (duplicate)"].error
        for name in ("exits_at_import", "exits_in_hook", "image (duplicate)"):
            assert client.health(f"museforge.plugin/{name}") == "NOT_SERVING"
        assert client.health("museforge.plugin/image") == client.health("museforge.plugin/fine") == "SERVING"
        assert len(client.generate("studio.fine", {}, count=2).artifacts) == 2
        assert client.generate("image.digits", {}).artifacts


def museforge_command(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "museforge.cli", *args], env=environment(site, "fine"),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("listing", ["plugins", "generators"])
def test_what_a_plugin_prints_while_it_loads_stays_out_of_json_output(site: Path, listing: str) -> None:
    done = museforge_command(site, listing, "--local", "--json")
    assert done.returncode == 0, done.stderr
    names = [item["name"] for item in json.loads(done.stdout)]
    assert ("fine" if listing == "plugins" else "studio.fine") in names
    assert "studio plugin loading" in done.stderr


def test_a_local_generator_that_exits_fails_its_command_and_ctrl_c_still_interrupts(site: Path,
                                                                                      tmp_path: Path) -> None:
    done = museforge_command(site, "generate", "studio.exits", "--local", "-o", str(tmp_path / "out"))
    assert done.returncode == 1
    assert "generator studio.exits failed: SystemExit: usage: studio [-h] WIDTH" in done.stderr
    # A KeyboardInterrupt in the main thread is the operator's Ctrl-C: the command stops as it always did.
    done = museforge_command(site, "generate", "studio.interrupted", "--local", "-o", str(tmp_path / "out"))
    assert done.returncode == 130 and "museforge: interrupted" in done.stderr

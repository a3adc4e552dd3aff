"""Installs that never break: museforge serves from the lowest versions pyproject.toml allows, from
the newest, and beside tritonclient[grpc] (which pins protobuf<7).

Each case installs the working tree's wheel with its serving dependencies only (no torch) into a
fresh virtualenv, starts `museforge serve` from it and generates image.digits through the CLI.
Downloads stay in the usual uv and pip caches, so a second run installs from disk.
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INSTALL_TIMEOUT = 900  # a cold cache downloads onnxruntime-gpu and scipy; a warm one takes seconds

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 300)


def run(*command: str | Path, timeout: float = INSTALL_TIMEOUT) -> str:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command[:4]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """museforge's wheel, built from a copy of the package sources (the tree's build/ stays untouched)."""
    source = tmp_path_factory.mktemp("source")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    for folder in sorted(set(project["tool"]["setuptools"]["package-dir"].values())):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", out,
        source)
    [built] = out.glob("museforge-*.whl")
    return built


def serving_requirements(wheel: Path) -> list[str]:
    """The wheel's own Requires-Dist, extras left out: the serving dependencies."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    return [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]


def uv(*args: str | Path) -> str:
    return run(sys.executable, "-m", "uv", *args)


def new_venv(path: Path) -> Path:
    """A virtualenv on this interpreter; its python."""
    uv("venv", "--quiet", "--python", sys.executable, path)
    return path / "bin" / "python"


def versions(python: Path, *names: str) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    return dict(json.loads(run(python, "-c", code, *names, timeout=60)))


@contextmanager
def serving(python: Path, data: Path) -> Iterator[str]:
    """`museforge serve` from the virtualenv on an ephemeral loopback port; its address."""
    env = {**os.environ, "MUSEFORGE_DATA_DIR": str(data)}
    proc = subprocess.Popen([python.parent / "museforge", "serve", "--address", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    output: list[str] = []
    address = ""
    for line in proc.stdout:
        output.append(line)
        match = re.search(r"museforge serving on (\S+)", line)
        if match:
            address = match.group(1)
            break
    try:
        assert address, "museforge serve did not start:\n" + "".join(output)
        # Keep reading so a chatty server never blocks on a full pipe.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def generate_digit(python: Path, address: str, out: Path) -> bytes:
    """image.digits through the virtualenv's CLI; the PNG it wrote."""
    run(python.parent / "museforge", "generate", "image.digits", "--server", address, "--param", "digit=7",
        "--seed", "3", "-o", out, timeout=120)
    [written] = out.iterdir()
    return written.read_bytes()


def generate_melody(python: Path, address: str, out: Path) -> bytes:
    """A one-bar music.melody WAV through the virtualenv's CLI: the SoundFont bank and its renderer load."""
    run(python.parent / "museforge", "generate", "music.melody", "--server", address, "--param", "bars=1",
        "--seed", "3", "--format", "wav", "-o", out, timeout=120)
    [written] = out.iterdir()
    return written.read_bytes()


def floor(requirements: list[str], name: str) -> Version:
    [requirement] = [r for r in requirements if re.match(rf"{re.escape(name)}\s*[<>=!~;,]", r)]
    match = re.search(r">=\s*([\w.]+)", requirement)
    assert match, requirement
    return Version(match.group(1))


def test_lowest_allowed_versions_serve_and_generate(wheel: Path, tmp_path: Path) -> None:
    """Every direct dependency at its floor: the floors are versions the code works with."""
    python = new_venv(tmp_path / "venv")
    requirements = serving_requirements(wheel)
    uv("pip", "install", "--quiet", "--python", python, "--resolution", "lowest-direct", wheel, *requirements)
    installed = versions(python, "protobuf", "grpcio")
    # The floors the generated code sets: its gencode and GRPC_GENERATED_VERSION must load on them.
    for name in ("protobuf", "grpcio"):
        assert Version(installed[name]) == floor(requirements, name), installed
    with serving(python, tmp_path / "data") as address:
        assert generate_digit(python, address, tmp_path / "out").startswith(PNG_SIGNATURE)
        # pretty-midi's bank and the SoundFont renderer at their floors
        assert generate_melody(python, address, tmp_path / "music")[:4] == b"RIFF"


def test_newest_versions_serve_and_generate(wheel: Path, tmp_path: Path) -> None:
    """A plain install: the newest releases, protobuf 7 among them."""
    python = new_venv(tmp_path / "venv")
    uv("pip", "install", "--quiet", "--python", python, wheel)
    assert versions(python, "protobuf")["protobuf"].split(".")[0] == "7"  # one major past the gencode
    with serving(python, tmp_path / "data") as address:
        assert generate_digit(python, address, tmp_path / "out").startswith(PNG_SIGNATURE)


METADATA = """
import json, sys
import tritonclient.grpc as triton
metadata = triton.InferenceServerClient(sys.argv[1]).get_model_metadata("image.digits", as_json=True)
print(json.dumps(metadata))
"""


def test_beside_tritonclient_grpc(wheel: Path, tmp_path: Path) -> None:
    """museforge resolved together with tritonclient[grpc] (protobuf<7), highest versions first
    as pip resolves them (uv's resolver: the same answer in seconds instead of a minute);
    both talk to the same server."""
    python = new_venv(tmp_path / "venv")
    uv("pip", "install", "--quiet", "--python", python, wheel, "tritonclient[grpc]")
    assert versions(python, "protobuf")["protobuf"].split(".")[0] == "6"  # tritonclient's pin holds
    with serving(python, tmp_path / "data") as address:
        assert generate_digit(python, address, tmp_path / "out").startswith(PNG_SIGNATURE)
        metadata = json.loads(run(python, "-c", METADATA, address, timeout=120))
    assert metadata["name"] == "image.digits"
    assert {tensor["name"] for tensor in metadata["outputs"]}

"""museforge from another language: a Node.js client (@grpc/grpc-js + @grpc/proto-loader).

A second client uses only Node's built-in fetch against the HTTP/JSON gateway.

The client loads the same .proto files from protos/, lists generators, generates two
images and sends a bad parameter, against a real server. Its PNGs must equal, byte for
byte, what the Python client gets for the same seed. Skipped only where Node.js or npm
is absent; its packages come from the npm registry (package-lock.json pins them).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from museforge.client import Client
from museforge.config import Settings
from tests.servers import ServerThread

HERE = Path(__file__).resolve().parent
PROTOS = HERE.parent.parent / "protos"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed on this machine",
)


@pytest.fixture(scope="module")
def node_client() -> Path:
    if not (HERE / "node_modules" / "@grpc" / "grpc-js").exists():
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-2000:]
    return HERE / "client.mjs"


def test_a_node_client_lists_generates_and_gets_field_errors(node_client: Path, server: ServerThread) -> None:
    result = subprocess.run(
        ["node", str(node_client), server.address, str(PROTOS)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    assert "image.digits" in seen["generators"] and "mesh.props" in seen["generators"]
    assert seen["seed"] == "42" and len(seen["artifacts"]) == 2
    assert seen["refused"]["code"] == 3  # INVALID_ARGUMENT
    with Client(server.address, timeout=60) as client:
        python = client.generate("image.digits", {"digit": 7}, seed=42, count=2, fmt="png").artifacts
    for from_node, from_python in zip(seen["artifacts"], python, strict=True):
        assert from_node["filename"] == from_python.filename
        assert base64.b64decode(from_node["data"]) == from_python.data


@pytest.fixture(scope="module")
def gateway_server() -> Iterator[ServerThread]:
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"])
    with ServerThread(settings) as running:
        yield running


def test_node_fetch_over_the_http_gateway(gateway_server: ServerThread) -> None:
    assert gateway_server.running is not None and gateway_server.running.gateway is not None
    base = f"http://{gateway_server.running.gateway.address}"
    result = subprocess.run(["node", str(HERE / "http_client.mjs"), base], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    assert "image.digits" in seen["generators"] and seen["status"] == 200 and seen["seed"] == "42"
    assert seen["refused"]["status"] == 400 and seen["refused"]["error"]["status"] == "INVALID_ARGUMENT"
    with Client(gateway_server.address, timeout=60) as client:
        python = client.generate("image.digits", {"digit": 7}, seed=42, count=2, fmt="png").artifacts
    assert [base64.b64decode(a["data"]) for a in seen["artifacts"]] == [a.data for a in python]

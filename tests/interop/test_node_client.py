"""museforge from another language: a Node.js client (@grpc/grpc-js + @grpc/proto-loader).

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
from pathlib import Path

import pytest

from museforge.client import Client
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

"""museforge from C++: examples/cpp is generated from protos/ with protoc + grpc_cpp_plugin,
built with CMake, and run against a real server; its PNGs must equal the Python client's.

Skipped with the reason where the gRPC C++ development files are not installed
(Debian/Ubuntu: libgrpc++-dev protobuf-compiler-grpc).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from museforge.client import Client
from tests.servers import ServerThread

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cpp"


def missing() -> str:
    for tool in ("cmake", "pkg-config", "protoc", "grpc_cpp_plugin", "c++"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["pkg-config", "--exists", "grpc++", "protobuf"], capture_output=True)
    return "" if probe.returncode == 0 else "the gRPC C++ development files (grpc++ .pc) are not installed"


pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "ready")


def test_the_cpp_example_generates_what_python_gets(server: ServerThread, tmp_path: Path) -> None:
    build = tmp_path / "build"
    for command in (["cmake", "-S", str(EXAMPLE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                    ["cmake", "--build", str(build), "-j2"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run = tmp_path / "run"
    run.mkdir()
    result = subprocess.run([str(build / "generate"), server.address, "3", "9", "2"], cwd=run,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with Client(server.address, timeout=60) as client:
        expected = client.generate("image.digits", {"digit": 3}, seed=9, count=2).artifacts
    assert result.stdout.split() == [a.filename for a in expected]
    assert [(run / a.filename).read_bytes() for a in expected] == [a.data for a in expected]
    refused = subprocess.run([str(build / "generate"), server.address, "12"], cwd=run, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 1 and "museforge: 3 " in refused.stderr  # INVALID_ARGUMENT

"""Regenerate the Python gRPC code in the package from protos/.

Run from anywhere: ``python scripts/generate_protos.py``. ``--check`` exits 1 when
the committed code differs from what the protos produce (used by the tests).

The code is generated with one pinned grpcio-tools (the dev extra pins the same): its protoc
sets the protobuf runtime the code needs (gencode 6.33.5: runtimes 6.33.5 up to 7.x accept it)
and its plugin the grpcio it needs (``GRPC_GENERATED_VERSION``). Those are the floors of
protobuf and grpcio in pyproject.toml; a newer grpcio-tools would raise them past what other
tools (tritonclient[grpc] pins protobuf<7) can install beside museforge.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.metadata
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
# protos/museforge/<pkg>/x.proto generates museforge/<pkg>/x_pb2.py, which lives in core/<pkg>/.
PACKAGE_ROOT = ROOT / "core"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
GRPC_TOOLS_VERSION = "1.81.1"  # bundles protoc for protobuf 6.33.5; keep in step with pyproject.toml


def proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def googleapis_root() -> Path:
    """Where googleapis-common-protos (a serving dependency) keeps its .proto sources."""
    from google.api import annotations_pb2

    return Path(annotations_pb2.__file__).resolve().parents[2]


def stage_googleapis(staging: Path, packages: tuple[str, ...] = ("longrunning",)) -> Path:
    """Copy the google/<package> protos museforge imports into ``staging``; returns it.

    googleapis-common-protos ships the .proto sources beside its modules, but names
    the long-running one operations_proto.proto while its module registers
    google/longrunning/operations.proto: the copy takes the registered name.
    """
    root = googleapis_root()
    for package in packages:
        target = staging / "google" / package
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted((root / "google" / package).glob("*.proto")):
            name = "operations.proto" if source.name == "operations_proto.proto" else source.name
            shutil.copyfile(source, target / name)
    return staging


def googleapis_includes(staging: Path) -> list[Path]:
    """Include paths for google/longrunning, google/api and google/rpc protos."""
    return [stage_googleapis(staging), googleapis_root()]


def require_pinned_tools() -> None:
    """Refuse to run with another grpcio-tools: its output would raise the runtime floors."""
    try:
        installed = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        installed = "none"
    if installed != GRPC_TOOLS_VERSION:
        raise SystemExit(f"grpcio-tools {installed} is installed; the committed code is generated with "
                         f'{GRPC_TOOLS_VERSION}: pip install "grpcio-tools=={GRPC_TOOLS_VERSION}"')


def generate(out: Path) -> list[Path]:
    """Compile every proto into ``out``; returns the generated files relative to ``out``."""
    require_pinned_tools()
    from grpc_tools import protoc  # dev-only dependency

    include = Path(protoc.__file__).parent / "_proto"
    googleapis = googleapis_includes(out.parent / "googleapis")
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        *(f"-I{path}" for path in googleapis),
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[str(p) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for module in (out / "museforge" / "inference").glob("*_pb2.py"):
        register_in_own_pool(module)
    return sorted(p.relative_to(out) for p in out.rglob("*") if p.name.endswith(SUFFIXES))


def register_in_own_pool(module: Path) -> None:
    """The OIP messages go to museforge.inference.POOL, not protobuf's default pool, where
    tritonclient registers the same names (one pool refuses a name twice)."""
    text = module.read_text("utf-8")
    default = "_descriptor_pool.Default().AddSerializedFile("
    if text.count(default) != 1:
        raise SystemExit(f"{module.name}: expected one {default!r}; has protoc's output changed?")
    text = text.replace(default, "POOL.AddSerializedFile(").replace(
        "# @@protoc_insertion_point(imports)\n",
        "# @@protoc_insertion_point(imports)\n# Triton's clients register these names too: a pool of our own "
        "lets both load in one process.\nfrom museforge.inference import POOL\n", 1)
    module.write_text(text, "utf-8")


def target_for(relative: Path) -> Path:
    # Drop the leading "museforge/" component: the package root is core/.
    return PACKAGE_ROOT.joinpath(*relative.parts[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        generated = generate(out)
        stale = [
            rel
            for rel in generated
            if not target_for(rel).exists() or not filecmp.cmp(out / rel, target_for(rel), False)
        ]
        if args.check:
            for rel in stale:
                print(f"stale: {target_for(rel).relative_to(ROOT)}", file=sys.stderr)
            return 1 if stale else 0
        for rel in generated:
            target = target_for(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / rel, target)
            print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fetch axe-core (the accessibility rules the studio tests run in the page) from the npm registry,
at one pinned version checked by its sha256, into tests/studio/vendor/. Run once; the files are
committed, so tests never reach the network.

    python scripts/vendor_axe.py
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE, VERSION = "axe-core", "4.14.1"
SHA256 = "e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745"  # of the npm pack tarball
KEPT = ("package/axe.min.js", "package/LICENSE")
TARGET = Path(__file__).resolve().parent.parent / "tests" / "studio" / "vendor" / f"{PACKAGE}-{VERSION}"


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=folder, check=True,
                       capture_output=True)
        archive = Path(folder) / f"{PACKAGE}-{VERSION}.tgz"
        found = hashlib.sha256(archive.read_bytes()).hexdigest()
        if found != SHA256:
            print(f"{archive.name}: sha256 {found}, expected {SHA256}: not using it", file=sys.stderr)
            return 1
        TARGET.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            for name in KEPT:
                member = tar.extractfile(name)
                assert member is not None
                (TARGET / Path(name).name).write_bytes(member.read())
    print(f"{PACKAGE} {VERSION} (MPL-2.0) in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

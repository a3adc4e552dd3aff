"""What both browsers' studio tests share: where screenshots go, and what to do without a browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHOTS = Path(__file__).resolve().parents[2] / "build" / "studio-screenshots"
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"


def need(present: bool, packages: str) -> None:
    """Skip the module without its browser (saying which Debian packages bring it), or fail when
    MUSEFORGE_REQUIRE_BROWSER is set, as .ci/run sets it after installing them."""
    if present:
        return
    if os.environ.get("MUSEFORGE_REQUIRE_BROWSER"):
        raise RuntimeError(f"the studio tests need Debian's {packages}")
    pytest.skip(f"no browser: apt-get install {packages}", allow_module_level=True)

"""Heavy modules the built-in plugins name with defer_import load after start-up, not before."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from museforge.engine import deferred_imports

HEAVY = ("scipy.signal", "scipy.ndimage", "skimage.color")

# Loads every built-in plugin as discovery does, then reports what is imported and deferred.
PROBE = """
import json, sys
from importlib import metadata
from museforge.engine.deferred_imports import deferred, import_deferred
for ep in metadata.entry_points(group="museforge"):
    ep.load()
heavy = {heavy!r}
before = [m for m in heavy if m in sys.modules]
import_deferred()
after = [m for m in heavy if m in sys.modules]
print(json.dumps({{"before": before, "deferred": deferred(), "after": after}}))
"""


def test_loading_the_builtin_plugins_imports_no_deferred_module_until_asked() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert found["before"] == []
    assert set(HEAVY) <= set(found["deferred"])
    assert found["after"] == list(HEAVY)


def test_a_deferred_module_that_cannot_be_imported_is_a_warning_not_a_failed_start(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deferred_imports, "_deferred", {"museforge_no_such_module_anywhere"})
    with caplog.at_level(logging.WARNING, logger=deferred_imports.__name__):
        thread = deferred_imports.import_in_background()
        assert thread is not None
        thread.join(30)
    assert "could not import museforge_no_such_module_anywhere" in caplog.text


def test_nothing_to_import_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deferred_imports, "_deferred", {"json"})
    assert deferred_imports.import_in_background() is None


def test_the_server_core_imports_no_scipy() -> None:
    # Feedback (recommendations, steering) fits with scipy; it is imported by the first fit.
    probe = ("import sys, museforge.server.app; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"

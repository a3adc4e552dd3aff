"""Heavy modules a plugin needs only on some requests, imported after the server is up.

scipy's ``signal`` and ``ndimage`` take about 1.3 s to import on a small machine, more
than every model's session together. A plugin module names them with :func:`defer_import` and
imports them inside the functions that use them, so discovery stays fast; once the
server answers health checks, :func:`import_in_background` loads them on a thread, so
the first request that needs one rarely waits for it (and if it comes first, Python's
import lock makes it wait for the same import, not repeat it).
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading

log = logging.getLogger(__name__)

_deferred: set[str] = set()


def defer_import(*modules: str) -> None:
    """Name modules to import after start-up (absolute names, e.g. ``"scipy.ndimage"``)."""
    _deferred.update(modules)


def deferred() -> list[str]:
    return sorted(_deferred)


def import_deferred() -> None:
    for name in deferred():
        try:
            importlib.import_module(name)
        except ImportError as exc:  # the request that needs it reports it; start-up goes on
            log.warning("could not import %s ahead of use: %s", name, exc)


def import_in_background() -> threading.Thread | None:
    """Start importing every deferred module on a daemon thread; None when none is left."""
    if all(name in sys.modules for name in deferred()):
        return None
    thread = threading.Thread(target=import_deferred, name="museforge-imports", daemon=True)
    thread.start()
    return thread

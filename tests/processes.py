"""``museforge serve`` processes seen from outside: their metrics endpoint, and what a call in
flight gets when the server is told to stop."""

from __future__ import annotations

import signal
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any


def scrape(address: str) -> dict[str, float]:
    """Every sample of the Prometheus endpoint at ``address``, by its name and labels."""
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=30).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def artifacts_through_sigterm(proc: subprocess.Popen[str], stream: Callable[[], Iterable[Any]]) -> int | None:
    """SIGTERM ``proc`` once the streaming call ``stream()`` opens is under way; the artifacts the
    call delivered in the end (None when it failed)."""
    outcome: dict[str, int] = {}
    running = threading.Event()

    def in_flight() -> None:
        artifacts = 0
        for event in stream():
            running.set()  # the server has the call (its first event is the seed)
            artifacts += event.WhichOneof("event") == "artifact"
        outcome["artifacts"] = artifacts

    caller = threading.Thread(target=in_flight)
    caller.start()
    # A fixed sleep raced a busy machine: the call could still be connecting at SIGTERM.
    assert running.wait(60)
    proc.send_signal(signal.SIGTERM)
    caller.join(60)
    return outcome.get("artifacts")

"""The one-minute load test: 200 concurrent clients, a mix of RPCs, a real server subprocess.

``MUSEFORGE_SOAK_SECONDS`` lengthens it for a soak (the default, 60 s, runs in CI).
Zero errors are allowed other than RESOURCE_EXHAUSTED (none is expected with the default
limits), every RPC of the mix must have been served, and the server's resident memory
may not grow by more than 100 MB between the end of warm-up and the end of the run.
"""

from __future__ import annotations

import asyncio
import os

from bench.soak import RPC_NAMES, render, soak
from tests.servers import ServeProcess

CLIENTS = 200
SECONDS = float(os.environ.get("MUSEFORGE_SOAK_SECONDS", "60"))
MAX_RSS_GROWTH_MB = 100.0


def test_two_hundred_clients_for_a_minute() -> None:
    with ServeProcess() as server:
        assert server.proc is not None
        report = asyncio.run(soak(server.address, CLIENTS, SECONDS, server.proc.pid))
    summary = render(report)
    print(summary)
    assert report.errors(allowed=("OK", "RESOURCE_EXHAUSTED")) == 0, summary
    assert set(report.latencies) == set(RPC_NAMES), summary
    assert report.rss_end_mb - report.rss_warm_mb < MAX_RSS_GROWTH_MB, summary

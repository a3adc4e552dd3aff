"""Every call of the Python client takes a ``timeout`` of its own, as ``generate`` does: seconds
for this call, None for no deadline, CLIENT_TIMEOUT (or left out) for the client's."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest

from museforge.client import CLIENT_TIMEOUT, Client, DeadlineExceeded, artifact_ref, feedback_event
from tests.core.feedback_helpers import fresh_user
from tests.servers import ServerThread

SHOWN = feedback_event("shown", artifact_ref(b"a picture", {"generator": "image.digits", "seed": "1"}),
                       user="tim")
Call = Callable[[Client, Any], object]
CALLS: dict[str, Call] = {
    "record_feedback": lambda c, t: c.record_feedback(SHOWN, timeout=t),
    "recommend": lambda c, t: c.recommend("generators", user="tim", refresh=True, timeout=t),
    "export_feedback": lambda c, t: list(c.export_feedback("tim", timeout=t)),
    "health": lambda c, t: c.health(timeout=t),
    "schema": lambda c, t: c.schema("image.digits", timeout=t),
    "list_jobs": lambda c, t: c.list_jobs(timeout=t),
    "watch_job": lambda c, t: list(c.watch_job("no-such-job", timeout=t)),
}


def test_a_feedback_write_honours_its_own_deadline_and_none_lifts_the_clients(server: ServerThread) -> None:
    assert server.running is not None and server.running.feedback is not None
    event = feedback_event("shown", SHOWN.artifact, user=fresh_user("deadline"))
    holder = sqlite3.connect(server.running.feedback.store.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # each write waits on the lock (up to the store's 10 s)
    answered: list[object] = []
    try:
        with Client(server.address, timeout=60) as patient, Client(server.address, timeout=0.5) as hurried:
            with pytest.raises(DeadlineExceeded):  # this call's own, shorter than the client's
                patient.record_feedback(event, timeout=0.5)
            with pytest.raises(DeadlineExceeded):
                patient.forget_user(event.user, timeout=0.5)
            with pytest.raises(DeadlineExceeded):  # the client's own, named
                hurried.record_feedback(event, timeout=CLIENT_TIMEOUT)
            lifted = threading.Thread(
                target=lambda: answered.append(hurried.record_feedback(event, timeout=None)))
            lifted.start()
            holder.execute("COMMIT")  # whenever the lifted write arrives, it goes through
            lifted.join(60)
    finally:
        if holder.in_transaction:
            holder.execute("COMMIT")
        holder.close()
    assert len(answered) == 1


@pytest.mark.parametrize("timeout", ["5", -1, 0, True, float("nan"), 1e12])
@pytest.mark.parametrize("name", CALLS)
def test_a_bad_timeout_is_named_before_any_call(server: ServerThread, name: str, timeout: object) -> None:
    refused = pytest.raises(ValueError, match="timeout: seconds above 0")
    with Client(server.address, timeout=60) as client, refused:
        CALLS[name](client, timeout)

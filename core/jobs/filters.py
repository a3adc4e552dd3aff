"""The filters of job listings: ``state=RUNNING OR state=QUEUED``, ``done=true``, ``state=FAILED``.

States are accepted as the proto names them (``JOB_STATE_RUNNING``, ``ITEM_STATE_FAILED``)
or short (``RUNNING``, ``FAILED``). PAUSED is never stored: the store holds such a job as
RUNNING (or QUEUED), so a listing asks the store for those and keeps the paused ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TypeVar

from ..engine.errors import FieldViolation, InvalidArgument
from .store import ItemState, JobState

MAX_FILTER_CHARS = 1000
E = TypeVar("E", bound=IntEnum)


def _clauses(text: str) -> list[tuple[str, str, str]]:
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidArgument(
            "bad filter", [FieldViolation("filter", f"{len(text):,} characters; at most {MAX_FILTER_CHARS}")]
        )
    found = []
    for clause in (c.strip() for c in text.split(" OR ") if c.strip()):
        key, sep, value = (part.strip() for part in clause.partition("="))
        found.append((clause, key if sep else "", value))
    return found


def _state(enum: type[E], prefix: str, value: str) -> E | None:
    name = value.upper().removeprefix(prefix)
    return enum[name] if name in enum.__members__ else None


def _refuse(clause: str, usage: str) -> InvalidArgument:
    return InvalidArgument(
        "bad filter", [FieldViolation("filter", f"{clause[:80]!r}: use {usage}, joined with OR")]
    )


def parse_filter(text: str) -> tuple[list[JobState], bool | None]:
    """``state=RUNNING``, ``state=QUEUED OR state=RUNNING``, ``done=true``; empty for every job."""
    states: list[JobState] = []
    done: bool | None = None
    for clause, key, value in _clauses(text):
        state = _state(JobState, "JOB_STATE_", value) if key == "state" else None
        if state is not None:
            states.append(state)
        elif key == "done" and value.lower() in ("true", "false"):
            done = value.lower() == "true"
        else:
            raise _refuse(clause, f"state=<{'|'.join(JobState.__members__)}> or done=true|false")
    return states, done


def parse_item_filter(text: str) -> list[ItemState]:
    """``state=FAILED``, ``state=FAILED OR state=SKIPPED``; empty for every item."""
    states: list[ItemState] = []
    for clause, key, value in _clauses(text):
        state = _state(ItemState, "ITEM_STATE_", value) if key == "state" else None
        if state is None:
            raise _refuse(clause, f"state=<{'|'.join(ItemState.__members__)}>")
        states.append(state)
    return states


def stored_states(states: Sequence[JobState], done: bool | None) -> list[JobState]:
    """The stored states a listing reads (empty: nothing can match)."""
    wanted = set(states) or set(JobState)
    if JobState.PAUSED in wanted:
        wanted |= {JobState.RUNNING, JobState.QUEUED}
    wanted.discard(JobState.PAUSED)
    if done is not None:
        wanted = {s for s in wanted if s.finished == done}
    return sorted(wanted)

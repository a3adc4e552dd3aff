"""Whose jobs a call sees: each job belongs to the API key that submitted it.

A key sees, watches, cancels, deletes and lists only its own jobs, and its idempotency keys
are its own; another key's job answers NOT_FOUND, as a job that is not there does, so ids
are not confirmed to anyone. A key with the admin scope sees every job. Without auth (or
with the job services listed in ``open_services``) calls carry no key: jobs have no owner
and every caller sees every job. The executor runs every job, whoever owns it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..server.caller import caller_is_admin, caller_key


@dataclass(frozen=True)
class Caller:
    owner: str  # what a job it submits belongs to: its key's id, '' without one
    sees: str | None  # whose jobs it sees: its own owner's, or None for every job


def calling() -> Caller:
    """The calling key as the job services see it (read in the call's own context)."""
    key = caller_key()
    if key is None:
        return Caller("", None)
    return Caller(key, None if caller_is_admin() else key)

"""Resubmission under an idempotency key: the same job gets its first job back, another is refused.

A pipeline that resends a job after a lost answer must get the job it first made; one that
changed the frames, the parameters or the output but kept the key would otherwise get the
old job back and believe its new work queued, so that is refused naming the key.
"""

from __future__ import annotations

from typing import Any

from ..engine.errors import FieldViolation, InvalidArgument
from .store import Job


def same_job_or_refuse(found: Job, spec: dict[str, Any], seed_given: bool) -> None:
    """Raise InvalidArgument naming ``job.idempotency_key`` when ``spec`` (as planned for the
    store) is not the job ``found`` holds; a seed left unset matches the one it picked."""
    first = dict(found.spec)
    again = dict(spec)
    if not seed_given:  # picked at each submission: the first one's stands
        first.pop("seed", None)
        again.pop("seed", None)
    differing = sorted(name for name in first.keys() | again.keys() if first.get(name) != again.get(name))
    if differing:
        fields = ", ".join(f"job.{name}" for name in differing)
        raise InvalidArgument(
            "idempotency key already used for another job",
            [FieldViolation("job.idempotency_key", f"already used by job {found.id}, whose {fields} "
                            "differ: send that job unchanged to get it back, or use a new key")],
        )

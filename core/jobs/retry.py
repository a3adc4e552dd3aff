"""``Jobs.RetryJob``: run a finished job's failed and/or skipped items again.

The items go back to pending and the job back to QUEUED in one transaction, with its stored
spec and seed, so the executor runs it as it resumes a job after a restart: items already
done stay done (their files untouched) and those redone come out byte-identical to an
uninterrupted run's. The executor holding the lease picks it up (at once on this server,
from the store on another). A video job's ranges whose parts are gone (a cancelled or failed
video job removes them) are redone too, since its join needs them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ..engine.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from ..v1 import jobs_pb2
from .paths import PathRefused
from .store import ItemState, Job, JobState
from .video_items import VideoJob

if TYPE_CHECKING:  # the service's module imports this one's
    from .service import JobsBackend

RETRYABLE: dict[int, ItemState] = {
    jobs_pb2.ITEM_STATE_FAILED: ItemState.FAILED,
    jobs_pb2.ITEM_STATE_SKIPPED: ItemState.SKIPPED,
}


def retry_states(given: Sequence[int]) -> tuple[ItemState, ...]:
    """The item states a RetryJobRequest asks for: FAILED and SKIPPED when it names none."""
    if not given:
        return (ItemState.FAILED, ItemState.SKIPPED)
    wrong = [FieldViolation(f"states[{i}]", "must be ITEM_STATE_FAILED or ITEM_STATE_SKIPPED (none: both)")
             for i, state in enumerate(given) if state not in RETRYABLE]
    if wrong:
        raise InvalidArgument("bad states", wrong)
    return tuple(dict.fromkeys(RETRYABLE[state] for state in given))


def not_finished(job: Job) -> FailedPrecondition:
    if job.cancel_requested:
        return FailedPrecondition(f"job {job.id} is being cancelled (it stops at its next item); "
                                  "retry it once it is CANCELLED, in a moment")
    return FailedPrecondition(f"job {job.id} is {job.state.name.lower()}: only a finished job's items can "
                              "be retried; wait for it to end, or cancel it first")


def nothing_to_retry(job_id: str, state: JobState, states: Sequence[ItemState]) -> FailedPrecondition:
    kinds = " or ".join(s.name.lower() for s in states)
    return FailedPrecondition(f"job {job_id} ({state.name.lower()}) has no {kinds} items to retry")


def lost_parts(backend: JobsBackend, job: Job) -> list[int]:
    """A video job's done ranges whose parts are gone, and its join: they go again with the rest."""
    video = VideoJob.of(job.spec)
    if video is None:
        return []
    lost = [job.total - 1]
    for item in backend.store.items(job.id, [ItemState.DONE]):
        if item.index == job.total - 1:
            continue
        try:
            kept = backend.sandbox.output_path(video.part(item.frame)).is_file()
        except PathRefused:  # the roots changed since: the executor says so when it runs the range
            kept = False
        if not kept:
            lost.append(item.index)
    return lost


def retry(backend: JobsBackend, job: Job, states: Sequence[ItemState]) -> None:
    """Queue ``job`` (as its caller sees it) again with its items in ``states``, or say why not; the
    caller then hands it to the executor (a poller would find it in the store anyway)."""
    if not job.state.finished:  # PAUSED included: it resumes on its own
        raise not_finished(job)
    outcome = backend.store.retry(job.id, states, lost_parts(backend, job))
    if outcome is None:  # deleted meanwhile
        raise NotFound(f"no job 'jobs/{job.id}'")
    before, count = outcome
    if not before.finished:  # retried by another call meanwhile
        raise not_finished(replace(job, state=before, cancel_requested=False))
    if count == 0:
        raise nothing_to_retry(job.id, before, states)

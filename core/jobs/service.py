"""Batch jobs over gRPC: ``museforge.v1.Jobs`` and ``google.longrunning.Operations``.

A job is the Operation ``jobs/<id>``. Its metadata is a JobMetadata; a finished job
carries a JobResult as its response (its first page of items: ``Jobs.ListJobItems``
pages through the rest), SUCCEEDED or FAILED alike (``JobMetadata.state`` tells which);
a cancelled one carries a CANCELLED error. Every answer is bounded: listings hold
summaries (no input paths, no items) and a page stops growing at PAGE_BYTES. Store calls
run in threads (SQLite commits fsync); the event loop only awaits them. A job store that
fails answers RESOURCE_EXHAUSTED (its disk is full) or UNAVAILABLE, in plain words.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

import grpc
from google.longrunning import operations_pb2
from google.longrunning import operations_pb2_grpc as ops_grpc
from google.protobuf import empty_pb2, json_format, message, timestamp_pb2
from google.rpc import code_pb2, status_pb2

from ..engine.catalogue import Engine
from ..engine.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    RequestError,
    ResourceExhausted,
    Unavailable,
)
from ..server.message_fields import message_from
from ..server.museforge_service import abort_with
from ..v1 import jobs_pb2
from ..v1 import jobs_pb2_grpc as jobs_grpc
from .filters import parse_filter, parse_item_filter, stored_states
from .owners import calling
from .pages import job_cursor, job_token, page_args
from .paths import Sandbox
from .plan import MAX_DESCRIPTION_CHARS, MAX_KEY_CHARS, plan_job
from .resubmit import same_job_or_refuse
from .retry import retry, retry_states
from .runner import LocalExecutor
from .store import Item, ItemState, Job, JobState, JobStore, StoreError
from .video_items import VideoJob

PREFIX = "jobs/"
POLL_SECONDS = 0.2
DEFAULT_PAGE = 100  # jobs per ListOperations page
MAX_PAGE = 1000
ITEMS_PAGE = 1000  # items per page: the default and the most
PAGE_BYTES = 1024 * 1024  # a page of jobs or items stops growing past this (one always fits)
MAX_WAIT_SECONDS = 3600.0  # WaitOperation's timeout is clamped to this
STORE_RETRY_SECONDS = 30.0
WATCH_BATCH = 1000  # item events read per poll
Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")
M = TypeVar("M", bound=message.Message)


def job_id_of(name: str) -> str:
    job_id = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if not job_id or "/" in job_id or len(job_id) > 64:
        raise InvalidArgument(
            "bad operation name", [FieldViolation("name", f"expected jobs/<id>, got {name[:80]!r}")]
        )
    return job_id


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def metadata_of(job: Job, summary: bool = False) -> jobs_pb2.JobMetadata:
    """The job's metadata; a summary (for listings) leaves out the list of input paths."""
    spec = json_format.ParseDict(job.spec, jobs_pb2.JobSpec(), ignore_unknown_fields=True)
    if summary:
        spec.input.ClearField("paths")
    # A record from before the size limits must not make every answer that holds it too big.
    spec.description = spec.description[:MAX_DESCRIPTION_CHARS]
    spec.idempotency_key = spec.idempotency_key[:MAX_KEY_CHARS]
    return jobs_pb2.JobMetadata(
        id=job.id,
        job=spec,
        state=jobs_pb2.JobState.Name(int(job.state)),  # the store's numbers are the proto's
        total=job.total,
        done=job.done,
        failed=job.failed,
        skipped=job.skipped,
        create_time=timestamp(job.created),
        update_time=timestamp(job.updated),
        executor=job.executor,
        # A cancel is recorded at once and acted on at the job's next item: said meanwhile.
        message=job.message or ("cancelling: stops at its next item" if job.cancel_requested
                                and not job.state.finished else ""),
    )


def deletion_refused(job: Job) -> FailedPrecondition | None:
    """Why the job cannot be deleted now (None: it can): it has not finished."""
    if job.state.finished:
        return None
    if job.cancel_requested:  # the caller did cancel: telling it to cancel first would be wrong
        return FailedPrecondition(f"job {job.id} is being cancelled (it stops at its next item); "
                                  "delete it once it is CANCELLED, in a moment")
    return FailedPrecondition(f"job {job.id} is {job.state.name.lower()}; cancel it first")


def item_of(item: Item, job: Job, video: VideoJob | None) -> jobs_pb2.JobItem:
    """An item as the API shows it; ``video`` is the job's shape (VideoJob.of its spec, read once)."""
    if video is None:
        last = item.frame
    else:  # a range, or the join (the last item), which covers them all
        last = video.last if item.index == job.total - 1 else video.last_of(item.frame)
    return message_from(jobs_pb2.JobItem, item, ("index", "frame", "input", "output", "error"),
                        state=jobs_pb2.ItemState.Name(int(item.state)), last_frame=last)


def operation_of(
    job: Job, items: tuple[list[jobs_pb2.JobItem], str] | None = None, summary: bool = False
) -> operations_pb2.Operation:
    """The job's Operation; a finished one holds ``items`` (a page and the next token), or
    none and the token of the first page when ``items`` is None."""
    operation = operations_pb2.Operation(name=PREFIX + job.id, done=job.state.finished)
    operation.metadata.Pack(metadata_of(job, summary))
    if job.state == JobState.CANCELLED:
        operation.error.CopyFrom(
            status_pb2.Status(
                code=code_pb2.CANCELLED, message=f"cancelled with {job.done} of {job.total} items done"
            )
        )
    elif job.state.finished:
        page, token = items if items is not None else ([], "0" if job.total else "")
        operation.response.Pack(jobs_pb2.JobResult(items=page, next_page_token=token))
    return operation


def fill_page(rows: Sequence[T], size: int, encode: Callable[[T], M | None]) -> tuple[list[M], int]:
    """Encoded rows (None: left out) up to ``size`` of them and PAGE_BYTES; how many rows were used."""
    page: list[M] = []
    total = used = 0
    for row in rows[:size]:
        encoded = encode(row)
        if encoded is not None:
            total += encoded.ByteSize()
            if page and total > PAGE_BYTES:
                break
            page.append(encoded)
        used += 1
    return page, used


def pause_message(error: StoreError) -> str:
    return (
        f"paused: the job store cannot record its progress ({error.reason}); it resumes on its own "
        "once the store takes writes again, or at the next start, and redoes the frames not recorded"
    )


def store_failure(error: StoreError, about: str = "") -> RequestError:
    """The plain answer for a failed store: RESOURCE_EXHAUSTED for a full disk, else UNAVAILABLE."""
    if error.full:
        return ResourceExhausted(f"{about}{error}; free space and try again", STORE_RETRY_SECONDS)
    return Unavailable(f"{about}{error}; try again later")


def wait_seconds(timeout: Any, has_timeout: bool, remaining: float | None) -> float:
    """WaitOperation's wait: its timeout clamped to MAX_WAIT_SECONDS, and the call's deadline."""
    seconds = MAX_WAIT_SECONDS
    if has_timeout:
        if timeout.seconds < 0 or not 0 <= timeout.nanos < 1_000_000_000:
            raise InvalidArgument(
                "bad timeout", [FieldViolation("timeout", "must be a duration of zero or more")]
            )
        seconds = min(timeout.seconds + timeout.nanos / 1e9, MAX_WAIT_SECONDS)
    return min(seconds, remaining if remaining is not None else math.inf)


class JobsBackend:
    """What both services share: the store, the executor and the checks."""

    def __init__(
        self, store: JobStore, executor: LocalExecutor, engine: Engine, sandbox: Sandbox, max_items: int
    ) -> None:
        self.store, self.executor, self.engine = store, executor, engine
        self.sandbox, self.max_items = sandbox, max_items
        self.stopping = False  # the server is draining: watches and waits end, the jobs resume later

    def refuse_if_stopping(self, job_id: str, state: JobState) -> None:
        """A watch or wait of a job ends once the server drains, instead of holding the drain
        for its whole grace; the job stays as it is and goes on when the server starts again."""
        if self.stopping:
            raise Unavailable(f"the server is shutting down; job {job_id} stays {state.name} and "
                              "goes on when it starts again: watch or wait for it again then")

    def submit(self, spec: jobs_pb2.JobSpec) -> Job:
        plan = plan_job(spec, self.engine, self.sandbox, self.max_items)
        job, created = self.store.create(
            plan.spec, plan.items, self.executor.name, spec.idempotency_key or None, calling().owner
        )
        if created:
            self.executor.submit(job.id)
        else:  # the key's first job, when this is that job sent again
            same_job_or_refuse(job, plan.spec, spec.HasField("seed"))
        return job

    def view(self, job: Job) -> Job:
        """The job as callers see it: PAUSED, with the reason, while its progress cannot be recorded."""
        error = self.executor.paused(job.id)
        if error is None or job.state.finished:
            return job
        return replace(job, state=JobState.PAUSED, message=pause_message(error))

    def job(self, name: str) -> Job:
        found = self.store.get(job_id_of(name), calling().sees)
        if found is None:  # or another key's: said alike, so no id is confirmed
            raise NotFound(f"no job {name[:80]!r}")
        return self.view(found)

    def state(self, name: str) -> JobState:
        """Only the job's state (cheap, for pollers)."""
        job_id = job_id_of(name)
        state = self.store.state(job_id, calling().sees)
        if state is None:
            raise NotFound(f"no job {name[:80]!r}")
        return JobState.PAUSED if not state.finished and self.executor.paused(job_id) else state

    def operation(self, name: str) -> operations_pb2.Operation:
        job = self.job(name)
        return operation_of(job, self.items_page(job, 0, ITEMS_PAGE) if job.state.finished else None)

    def items_page(
        self, job: Job, start: int, size: int, states: Sequence[ItemState] = ()
    ) -> tuple[list[jobs_pb2.JobItem], str]:
        """Items from index ``start`` on, and the token of the next page ("" on the last)."""
        rows = self.store.items(job.id, states, from_index=start, limit=size + 1)
        video = VideoJob.of(job.spec)
        page, used = fill_page(rows, size, lambda item: item_of(item, job, video))
        return page, str(rows[used].index) if used < len(rows) else ""

    def summaries(
        self, states: Sequence[JobState], done: bool | None, after: tuple[float, str] | None, size: int
    ) -> tuple[list[operations_pb2.Operation], str]:
        """A page of job summaries (no input paths, no items), oldest first, and the next token."""
        stored = stored_states(states, done)
        if not stored:
            return [], ""

        def summary(job: Job) -> operations_pb2.Operation | None:
            job = self.view(job)
            if (states and job.state not in states) or (done is not None and job.state.finished != done):
                return None
            return operation_of(job, summary=True)

        rows = self.store.jobs(stored, limit=size + 1, after=after, owner=calling().sees)
        page, used = fill_page(rows, size, summary)
        return page, job_token(rows[used - 1]) if 0 < used < len(rows) else ""


@asynccontextmanager
async def answering(context: Context) -> AsyncIterator[None]:
    """Request errors and store failures become the call's status (never UNKNOWN)."""
    try:
        yield
    except StoreError as exc:
        await abort_with(context, store_failure(exc))
        raise
    except RequestError as exc:
        await abort_with(context, exc)
        raise


class BackendServicer:
    """A servicer answering from the backend both job services share."""

    def __init__(self, backend: JobsBackend) -> None:
        self.backend = backend


class JobsService(BackendServicer, jobs_grpc.JobsServicer):
    async def SubmitJob(
        self, request: jobs_pb2.SubmitJobRequest, context: Context
    ) -> operations_pb2.Operation:
        async with answering(context):
            job = await asyncio.to_thread(self.backend.submit, request.job)
            return await asyncio.to_thread(self.backend.operation, job.id)

    async def ListJobItems(
        self, request: jobs_pb2.ListJobItemsRequest, context: Context
    ) -> jobs_pb2.ListJobItemsResponse:
        async with answering(context):
            states = parse_item_filter(request.filter)
            start, size = page_args(request.page_size, request.page_token, ITEMS_PAGE, ITEMS_PAGE)
            job = await asyncio.to_thread(self.backend.job, request.name)
            items, token = await asyncio.to_thread(self.backend.items_page, job, start, size, states)
            return jobs_pb2.ListJobItemsResponse(items=items, next_page_token=token)

    async def RetryJob(self, request: jobs_pb2.RetryJobRequest, context: Context) -> operations_pb2.Operation:
        async with answering(context):
            states = retry_states(request.states)
            job = await asyncio.to_thread(self.backend.job, request.name)
            await asyncio.to_thread(retry, self.backend, job, states)
            try:  # the answer shows the job as the retry left it, before any item runs again
                return await asyncio.to_thread(self.backend.operation, job.id)
            finally:
                await asyncio.to_thread(self.backend.executor.submit, job.id)

    async def WatchJob(
        self, request: jobs_pb2.WatchJobRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.JobEvent]:
        backend, store = self.backend, self.backend.store
        async with answering(context):
            job_id = (await asyncio.to_thread(backend.job, request.name)).id
            found = await asyncio.to_thread(store.snapshot, job_id)
            if found is None:
                raise NotFound(f"no job {request.name[:80]!r}")
            job, seq = found  # read together: every later change has a larger seq
            video = VideoJob.of(job.spec)
            yield jobs_pb2.JobEvent(snapshot=metadata_of(backend.view(job)))
            while True:
                state = await asyncio.to_thread(store.state, job_id)
                changed = await asyncio.to_thread(store.items, job_id, (), seq, 0, WATCH_BATCH)
                for item in changed:
                    if item.state != ItemState.PENDING:
                        yield jobs_pb2.JobEvent(item=item_of(item, job, video))
                    seq = max(seq, item.seq)
                if state is None:
                    return  # deleted while watched
                paused = backend.executor.paused(job_id)
                if paused is not None and not state.finished:
                    current = await asyncio.to_thread(backend.job, request.name)
                    yield jobs_pb2.JobEvent(snapshot=metadata_of(current))
                    raise store_failure(paused, f"job {job_id} is paused: ")
                if len(changed) == WATCH_BATCH:
                    continue  # more changes are waiting
                if state.finished and not changed:
                    current = await asyncio.to_thread(backend.job, request.name)
                    yield jobs_pb2.JobEvent(snapshot=metadata_of(current))
                    return
                backend.refuse_if_stopping(job_id, state)
                await asyncio.sleep(POLL_SECONDS)


class OperationsService(BackendServicer, ops_grpc.OperationsServicer):
    async def GetOperation(
        self, request: operations_pb2.GetOperationRequest, context: Context
    ) -> operations_pb2.Operation:
        async with answering(context):
            return await asyncio.to_thread(self.backend.operation, request.name)

    async def ListOperations(
        self, request: operations_pb2.ListOperationsRequest, context: Context
    ) -> operations_pb2.ListOperationsResponse:
        async with answering(context):
            states, done = parse_filter(request.filter)
            _, size = page_args(request.page_size, "", DEFAULT_PAGE, MAX_PAGE)
            after = job_cursor(request.page_token)
            operations, token = await asyncio.to_thread(self.backend.summaries, states, done, after, size)
            return operations_pb2.ListOperationsResponse(operations=operations, next_page_token=token)

    async def CancelOperation(
        self, request: operations_pb2.CancelOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        async with answering(context):
            job = await asyncio.to_thread(self.backend.job, request.name)
            await asyncio.to_thread(self.backend.executor.cancel, job.id)
            return empty_pb2.Empty()

    async def DeleteOperation(
        self, request: operations_pb2.DeleteOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        async with answering(context):
            job = await asyncio.to_thread(self.backend.job, request.name)
            refused = deletion_refused(job)
            if refused is not None:
                raise refused
            await asyncio.to_thread(self.backend.store.delete, job.id)  # the outputs stay
            return empty_pb2.Empty()

    async def WaitOperation(
        self, request: operations_pb2.WaitOperationRequest, context: Context
    ) -> operations_pb2.Operation:
        async with answering(context):
            seconds = wait_seconds(request.timeout, request.HasField("timeout"), context.time_remaining())
            deadline = time.monotonic() + seconds
            while True:  # poll only the state (one row); build the answer once
                state = await asyncio.to_thread(self.backend.state, request.name)
                if state.finished or state == JobState.PAUSED or time.monotonic() + POLL_SECONDS >= deadline:
                    return await asyncio.to_thread(self.backend.operation, request.name)
                self.backend.refuse_if_stopping(request.name, state)
                await asyncio.sleep(POLL_SECONDS)

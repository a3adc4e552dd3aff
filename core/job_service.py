"""Batch jobs over gRPC: ``museforge.v1.Jobs`` and ``google.longrunning.Operations``.

A job is the Operation ``jobs/<id>``. Its metadata is a JobMetadata; a finished job
carries a JobResult (every item and its state) as its response, SUCCEEDED or FAILED
alike (``JobMetadata.state`` tells which); a cancelled one carries a CANCELLED error.
Store calls run in threads (SQLite commits fsync); the event loop only awaits them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.longrunning import operations_pb2_grpc as ops_grpc
from google.protobuf import empty_pb2, json_format, timestamp_pb2
from google.rpc import code_pb2, status_pb2

from .engine import Engine
from .errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, RequestError
from .job_paths import Sandbox
from .job_plan import plan_job
from .job_runner import LocalExecutor
from .job_store import Item, ItemState, Job, JobState, JobStore
from .service import abort_with
from .v1 import jobs_pb2
from .v1 import jobs_pb2_grpc as jobs_grpc

PREFIX = "jobs/"
POLL_SECONDS = 0.2
DEFAULT_PAGE = 100
MAX_PAGE = 1000
Context = grpc.aio.ServicerContext[Any, Any]


def job_id_of(name: str) -> str:
    job_id = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if not job_id or "/" in job_id:
        raise InvalidArgument(
            "bad operation name", [FieldViolation("name", f"expected jobs/<id>, got {name!r}")]
        )
    return job_id


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def metadata_of(job: Job) -> jobs_pb2.JobMetadata:
    spec = json_format.ParseDict(job.spec, jobs_pb2.JobSpec())
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
    )


def item_of(item: Item) -> jobs_pb2.JobItem:
    return jobs_pb2.JobItem(
        index=item.index,
        frame=item.frame,
        input=item.input,
        output=item.output,
        state=jobs_pb2.ItemState.Name(int(item.state)),
        error=item.error,
    )


def operation_of(job: Job, items: list[Item]) -> operations_pb2.Operation:
    operation = operations_pb2.Operation(name=PREFIX + job.id, done=job.state.finished)
    operation.metadata.Pack(metadata_of(job))
    if job.state == JobState.CANCELLED:
        operation.error.CopyFrom(
            status_pb2.Status(
                code=code_pb2.CANCELLED, message=f"cancelled with {job.done} of {job.total} items done"
            )
        )
    elif job.state.finished:
        operation.response.Pack(jobs_pb2.JobResult(items=[item_of(i) for i in items]))
    return operation


class JobsBackend:
    """What both services share: the store, the executor and the checks."""

    def __init__(
        self, store: JobStore, executor: LocalExecutor, engine: Engine, sandbox: Sandbox, max_items: int
    ) -> None:
        self.store, self.executor, self.engine = store, executor, engine
        self.sandbox, self.max_items = sandbox, max_items

    def submit(self, spec: jobs_pb2.JobSpec) -> Job:
        plan = plan_job(spec, self.engine, self.sandbox, self.max_items)
        job, created = self.store.create(
            plan.spec, plan.items, self.executor.name, spec.idempotency_key or None
        )
        if created:
            self.executor.submit(job.id)
        return job

    def job(self, name: str) -> Job:
        found = self.store.get(job_id_of(name))
        if found is None:
            raise NotFound(f"no job {name!r}")
        return found

    def operation(self, name: str) -> operations_pb2.Operation:
        job = self.job(name)
        return operation_of(job, self.store.items(job.id) if job.state.finished else [])


def parse_filter(text: str) -> tuple[list[JobState], bool | None]:
    """``state=RUNNING``, ``state=QUEUED OR state=RUNNING``, ``done=true``; empty for every job.

    States are accepted as the proto names them (``JOB_STATE_RUNNING``) or short (``RUNNING``).
    """
    states: list[JobState] = []
    done: bool | None = None
    for clause in (c.strip() for c in text.split(" OR ") if c.strip()):
        key, sep, value = (part.strip() for part in clause.partition("="))
        state = value.upper().removeprefix("JOB_STATE_")
        if sep and key == "state" and state in JobState.__members__:
            states.append(JobState[state])
        elif sep and key == "done" and value.lower() in ("true", "false"):
            done = value.lower() == "true"
        else:
            raise InvalidArgument(
                "bad filter",
                [
                    FieldViolation(
                        "filter",
                        f"{clause!r}: use state=<{'|'.join(JobState.__members__)}> or done=true|false, "
                        "joined with OR",
                    )
                ],
            )
    return states, done


class JobsService(jobs_grpc.JobsServicer):
    def __init__(self, backend: JobsBackend) -> None:
        self.backend = backend

    async def SubmitJob(
        self, request: jobs_pb2.SubmitJobRequest, context: Context
    ) -> operations_pb2.Operation:
        try:
            job = await asyncio.to_thread(self.backend.submit, request.job)
            return await asyncio.to_thread(self.backend.operation, job.id)
        except RequestError as exc:
            await abort_with(context, exc)
            raise

    async def WatchJob(
        self, request: jobs_pb2.WatchJobRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.JobEvent]:
        store = self.backend.store
        try:
            job_id = (await asyncio.to_thread(self.backend.job, request.name)).id
            found = await asyncio.to_thread(store.snapshot, job_id)
            if found is None:
                raise NotFound(f"no job {request.name!r}")
        except RequestError as exc:
            await abort_with(context, exc)
            raise
        job, seq = found  # read together: every later change has a larger seq
        yield jobs_pb2.JobEvent(snapshot=metadata_of(job))
        while True:
            current = await asyncio.to_thread(store.get, job.id)
            changed = await asyncio.to_thread(store.items, job.id, (), seq)
            for item in changed:
                if item.state != ItemState.PENDING:
                    yield jobs_pb2.JobEvent(item=item_of(item))
                seq = max(seq, item.seq)
            if current is None:
                return  # deleted while watched
            if current.state.finished and not changed:
                yield jobs_pb2.JobEvent(snapshot=metadata_of(current))
                return
            await asyncio.sleep(POLL_SECONDS)


class OperationsService(ops_grpc.OperationsServicer):
    def __init__(self, backend: JobsBackend) -> None:
        self.backend = backend

    async def GetOperation(
        self, request: operations_pb2.GetOperationRequest, context: Context
    ) -> operations_pb2.Operation:
        try:
            return await asyncio.to_thread(self.backend.operation, request.name)
        except RequestError as exc:
            await abort_with(context, exc)
            raise

    async def ListOperations(
        self, request: operations_pb2.ListOperationsRequest, context: Context
    ) -> operations_pb2.ListOperationsResponse:
        try:
            states, done = parse_filter(request.filter)
            if request.page_size < 0 or (
                request.page_token and not re.fullmatch(r"[0-9]{1,18}", request.page_token)
            ):
                raise InvalidArgument(
                    "bad page", [FieldViolation("page_token", "not a token from this server")]
                )
        except RequestError as exc:
            await abort_with(context, exc)
            raise
        jobs = await asyncio.to_thread(self.backend.store.jobs, states)
        if done is not None:
            jobs = [j for j in jobs if j.state.finished == done]
        start = int(request.page_token or 0)
        size = min(request.page_size or DEFAULT_PAGE, MAX_PAGE)
        page = jobs[start : start + size]
        operations = [await asyncio.to_thread(self.backend.operation, j.id) for j in page]
        token = str(start + size) if start + size < len(jobs) else ""
        return operations_pb2.ListOperationsResponse(operations=operations, next_page_token=token)

    async def CancelOperation(
        self, request: operations_pb2.CancelOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        try:
            job = await asyncio.to_thread(self.backend.job, request.name)
        except RequestError as exc:
            await abort_with(context, exc)
            raise
        await asyncio.to_thread(self.backend.executor.cancel, job.id)
        return empty_pb2.Empty()

    async def DeleteOperation(
        self, request: operations_pb2.DeleteOperationRequest, context: Context
    ) -> empty_pb2.Empty:
        try:
            job = await asyncio.to_thread(self.backend.job, request.name)
            if not job.state.finished:
                raise FailedPrecondition(f"job {job.id} is {job.state.name.lower()}; cancel it first")
        except RequestError as exc:
            await abort_with(context, exc)
            raise
        await asyncio.to_thread(self.backend.store.delete, job.id)  # the outputs stay
        return empty_pb2.Empty()

    async def WaitOperation(
        self, request: operations_pb2.WaitOperationRequest, context: Context
    ) -> operations_pb2.Operation:
        timeout = request.timeout.ToTimedelta().total_seconds() if request.HasField("timeout") else None
        remaining = context.time_remaining()
        limits = [t for t in (timeout, remaining) if t is not None]
        deadline = time.monotonic() + (min(limits) if limits else 3600.0)
        try:
            while True:
                operation = await asyncio.to_thread(self.backend.operation, request.name)
                if operation.done or time.monotonic() + POLL_SECONDS >= deadline:
                    return operation
                await asyncio.sleep(POLL_SECONDS)
        except RequestError as exc:
            await abort_with(context, exc)
            raise

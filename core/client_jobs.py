"""The Python client's batch-job calls (``Client`` inherits them): submit, read, wait, watch,
cancel, retry and delete a job, each with the per-call ``timeout`` every call takes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from google.longrunning import operations_pb2
from google.longrunning import operations_pb2_grpc as ops_grpc
from google.protobuf import duration_pb2

from .client_errors import typed_errors
from .client_requests import CLIENT_TIMEOUT, Timeout, deadline
from .v1 import jobs_pb2
from .v1 import jobs_pb2_grpc as jobs_grpc

__all__ = ["JobCalls", "job_name"]


@typed_errors
class JobCalls:
    """Batch jobs (see docs/jobs.md); each takes a job id or its Operation name (``jobs/<id>``)."""

    timeout: float | None  # the client's own: what CLIENT_TIMEOUT stands for
    jobs: jobs_grpc.JobsStub
    operations: ops_grpc.OperationsStub

    def submit_job(self, job: jobs_pb2.JobSpec, *,
                   timeout: Timeout = CLIENT_TIMEOUT) -> operations_pb2.Operation:
        """Queue a job: its Operation (``jobs/<id>``), or the one its idempotency key made before."""
        return self.jobs.SubmitJob(jobs_pb2.SubmitJobRequest(job=job),
                                   timeout=deadline(timeout, self.timeout))

    def get_job(self, name: str, *, timeout: Timeout = CLIENT_TIMEOUT) -> operations_pb2.Operation:
        """The job (an id or ``jobs/<id>``) as it stands: JobMetadata, and its result once done."""
        return self.operations.GetOperation(operations_pb2.GetOperationRequest(name=job_name(name)),
                                            timeout=deadline(timeout, self.timeout))

    def list_jobs(self, filter: str = "", page_size: int = 0, *,
                  timeout: Timeout = CLIENT_TIMEOUT) -> list[operations_pb2.Operation]:
        """Every job, page after page (``timeout`` for each page); ``filter`` keeps to states
        (``state=RUNNING OR state=QUEUED``)."""
        limit = deadline(timeout, self.timeout)
        found: list[operations_pb2.Operation] = []
        token = ""
        while True:
            reply = self.operations.ListOperations(operations_pb2.ListOperationsRequest(
                name="jobs", filter=filter, page_size=page_size, page_token=token), timeout=limit)
            found.extend(reply.operations)
            token = reply.next_page_token
            if not token:
                return found

    def job_items(self, name: str, page_size: int = 0, *,
                  timeout: Timeout = CLIENT_TIMEOUT) -> Iterator[jobs_pb2.JobItem]:
        """Every item (frame) of the job, page after page (``timeout`` for each page), in index order."""
        limit = deadline(timeout, self.timeout)
        token = ""
        while True:
            reply = self.jobs.ListJobItems(jobs_pb2.ListJobItemsRequest(
                name=job_name(name), page_size=page_size, page_token=token), timeout=limit)
            yield from reply.items
            token = reply.next_page_token
            if not token:
                return

    def cancel_job(self, name: str, *, timeout: Timeout = CLIENT_TIMEOUT) -> None:
        """Stop the job; the frames it finished are kept."""
        self.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=job_name(name)),
                                        timeout=deadline(timeout, self.timeout))

    def retry_job(self, name: str, states: Sequence[str] = (), *,
                  timeout: Timeout = CLIENT_TIMEOUT) -> operations_pb2.Operation:
        """Run an ended job's failed and skipped items again (``states``: "failed", "skipped" or
        both, the default); the items it did stay done. Returns the job's Operation."""
        chosen = [f"ITEM_STATE_{state.upper()}" for state in states]
        return self.jobs.RetryJob(jobs_pb2.RetryJobRequest(name=job_name(name), states=chosen),
                                  timeout=deadline(timeout, self.timeout))

    def delete_job(self, name: str, *, timeout: Timeout = CLIENT_TIMEOUT) -> None:
        """Forget an ended job; its output files stay."""
        self.operations.DeleteOperation(operations_pb2.DeleteOperationRequest(name=job_name(name)),
                                        timeout=deadline(timeout, self.timeout))

    def wait_job(self, name: str, timeout: float) -> operations_pb2.Operation:
        """The job once it is done, or as it stands after ``timeout`` seconds: here the time the
        server waits, not a deadline, so the call's deadline is 30 s past it."""
        request = operations_pb2.WaitOperationRequest(
            name=job_name(name), timeout=duration_pb2.Duration(seconds=int(timeout),
                                                               nanos=int(timeout % 1 * 1e9)))
        return self.operations.WaitOperation(request, timeout=timeout + 30)

    def watch_job(self, name: str, *, timeout: Timeout = None) -> Iterator[jobs_pb2.JobEvent]:
        """The job's snapshot, each item as it finishes, a last snapshot when it ends; left out,
        ``timeout`` is no deadline (a job may run for hours), not the client's."""
        yield from self.jobs.WatchJob(jobs_pb2.WatchJobRequest(name=job_name(name)),
                                      timeout=deadline(timeout, self.timeout))


def job_name(name: str) -> str:
    """Accept a bare job id or the Operation name."""
    return name if name.startswith("jobs/") else f"jobs/{name}"

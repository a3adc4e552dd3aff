"""A small synchronous Python client for museforge.v1, used by the CLI and the tests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.longrunning import operations_pb2
from google.longrunning import operations_pb2_grpc as ops_grpc
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .client_errors import (
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    MuseforgeError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    field_violations,
    retry_after,
    typed_errors,
)
from .client_structs import to_struct
from .config import DEFAULT_ADDRESS, port_problem
from .inference import grpc_service_pb2 as oip
from .inference import grpc_service_pb2_grpc as oip_grpc
from .v1 import feedback_pb2 as fb
from .v1 import feedback_pb2_grpc as feedback_grpc
from .v1 import jobs_pb2
from .v1 import jobs_pb2_grpc as jobs_grpc
from .v1 import museforge_pb2 as pb
from .v1 import museforge_pb2_grpc as pb_grpc

__all__ = [
    "BearerKey", "Cancelled", "Client", "DeadlineExceeded", "FailedPrecondition", "Internal",
    "InvalidArgument", "MuseforgeError", "NotFound", "PermissionDenied", "ResourceExhausted",
    "Unauthenticated", "Unavailable", "Unimplemented", "artifact_ref", "check_port", "feedback_event",
    "field_violations",
    "job_name", "retry_after", "seeded", "to_struct",
]

MAX_MESSAGE = 512 * 1024 * 1024  # the server's default limit

Parameters = Mapping[str, Any] | None
Inputs = Sequence[bytes | tuple[str, bytes]]
MediaRequest = pb.GenerateRequest | pb.ApplyEffectRequest
RequestT = TypeVar("RequestT", pb.GenerateRequest, pb.ApplyEffectRequest)
# The unary and the streaming method of each request: the rest of a call is the same for both.
RPCS: dict[type[MediaRequest], tuple[str, str]] = {
    pb.GenerateRequest: ("Generate", "StreamGenerate"),
    pb.ApplyEffectRequest: ("ApplyEffect", "StreamApplyEffect"),
}


def seeded(message: RequestT, seed: int | None) -> RequestT:
    """The request with its seed set; left unset, the server picks one and reports it."""
    if seed is not None:
        message.seed = seed
    return message


def artifact_ref(artifact: pb.Artifact | bytes,
                 provenance: Mapping[str, str] | None = None) -> fb.ArtifactRef:
    """The feedback reference of an artifact: the sha256 of its bytes and its provenance.

    Pass a ``pb.Artifact`` as Generate returned it (its metadata is the provenance), or a
    file's bytes and the provenance read from it (e.g. ``read_png_provenance``).
    """
    data = artifact.data if isinstance(artifact, pb.Artifact) else artifact
    record = dict(artifact.metadata) if isinstance(artifact, pb.Artifact) else dict(provenance or {})
    models = json.loads(record.get("models") or "[]")
    ref = fb.ArtifactRef(sha256=hashlib.sha256(data).hexdigest(), generator=record.get("generator", ""),
                         effect=record.get("effect", ""), seed=int(record.get("seed") or 0),
                         model_version=str(models[0].get("version", "")) if models else "",
                         index=int(record.get("index") or 0))
    ref.parameters.update(json.loads(record.get("parameters") or "{}"))
    return ref


def feedback_event(kind: str, artifact: fb.ArtifactRef | None = None, *, user: str = "", thumb: str = "",
                   stars: int = 0, candidates: Sequence[fb.ArtifactRef] = ()) -> fb.FeedbackEvent:
    """An event to record: ``kind`` is thumbs, stars, pick, keep or shown; ``thumb`` up or down.

    A pick's ``artifact`` is the chosen one of its ``candidates``.
    """
    event = fb.FeedbackEvent(user=user, kind=f"FEEDBACK_KIND_{kind.upper()}", stars=stars,
                             thumb=f"THUMB_{thumb.upper()}" if thumb else None, candidates=list(candidates))
    if artifact is not None:
        event.artifact.CopyFrom(artifact)
    return event


class BearerKey(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <key>`` to every call (on TLS and plain channels alike)."""

    def __init__(self, key: str) -> None:
        self.header = ("authorization", f"Bearer {key}")

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self.header]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready,
            getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class _Details(grpc.ClientCallDetails):
    def __init__(self, method: str, timeout: float | None, metadata: Any, credentials: Any,
                 wait_for_ready: bool | None, compression: Any) -> None:
        self.method, self.timeout, self.metadata = method, timeout, metadata
        self.credentials, self.wait_for_ready, self.compression = credentials, wait_for_ready, compression


def check_port(address: str) -> None:
    """ValueError for a HOST:PORT whose port gRPC would not dial as written (``port_problem``)."""
    problem = port_problem(address, lowest=1)
    if problem:
        raise ValueError(problem)


@typed_errors
class Client:
    """Talks to a running museforge server.

    >>> with Client("127.0.0.1:50051") as client:
    ...     result = client.generate("image.digits", {"digit": 7}, seed=42, count=4)

    A failed call raises the ``MuseforgeError`` of its status code (``InvalidArgument``,
    ``NotFound``, ...), a ``grpc.RpcError`` too; a stream raises it while it is iterated.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float | None = None,
        api_key: str | None = None,
        tls_ca: bytes | None = None,
        tls_cert: bytes | None = None,
        tls_key: bytes | None = None,
        tls: bool = False,
        tls_server_name: str | None = None,
    ) -> None:
        """``api_key`` is sent as ``authorization: Bearer``; ``tls_ca`` (or ``tls``, for the
        system's roots) makes the channel TLS, ``tls_cert``/``tls_key`` add a client certificate."""
        check_port(address)
        self.address = address
        self.timeout = timeout
        options: list[tuple[str, int | str]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ]
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("a client certificate needs both tls_cert and tls_key")
        if tls_server_name:  # the name the certificate carries, when dialling e.g. 127.0.0.1
            options.append(("grpc.ssl_target_name_override", tls_server_name))
        if tls or tls_ca is not None or tls_cert is not None:
            credentials = grpc.ssl_channel_credentials(tls_ca, tls_key, tls_cert)
            channel = grpc.secure_channel(address, credentials, options=options)
        else:
            channel = grpc.insecure_channel(address, options=options)
        self.raw_channel = channel
        self.channel = grpc.intercept_channel(channel, BearerKey(api_key)) if api_key else channel
        self.stub = pb_grpc.MuseforgeStub(self.channel)
        self.jobs = jobs_grpc.JobsStub(self.channel)
        self.operations = ops_grpc.OperationsStub(self.channel)
        self.inference = oip_grpc.GRPCInferenceServiceStub(self.channel)
        self.feedback = feedback_grpc.FeedbackStub(self.channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.raw_channel.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects (raises grpc.FutureTimeoutError otherwise)."""
        grpc.channel_ready_future(self.raw_channel).result(timeout=timeout)

    def health(self, service: str = "") -> str:
        stub = health_pb2_grpc.HealthStub(self.channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def plugins(self) -> list[pb.PluginInfo]:
        return list(self.stub.ListPlugins(pb.ListPluginsRequest(), timeout=self.timeout).plugins)

    def generators(self, modality: str = "") -> list[pb.GeneratorInfo]:
        reply = self.stub.ListGenerators(pb.ListGeneratorsRequest(modality=modality),
                                         timeout=self.timeout)
        return list(reply.generators)

    def effects(self, modality: str = "") -> list[pb.EffectInfo]:
        reply = self.stub.ListEffects(pb.ListEffectsRequest(modality=modality), timeout=self.timeout)
        return list(reply.effects)

    def statistics(self, model: str = "") -> list[pb.ModelStatistics]:
        reply = self.stub.GetModelStatistics(pb.GetModelStatisticsRequest(model=model),
                                             timeout=self.timeout)
        return list(reply.models)

    def schema(self, generator: str) -> dict[str, Any]:
        for info in self.generators():
            if info.name == generator:
                return dict(json.loads(info.parameters_schema))
        raise KeyError(generator)

    # -- the model repository (Triton's extension of the OIP; the key needs the admin scope) --

    def models(self, ready: bool = False) -> list[oip.RepositoryIndexResponse.ModelIndex]:
        """Every served model's name, version, state (READY, UNAVAILABLE, LOADING) and reason;
        with ``ready``, only the READY ones."""
        reply = self.inference.RepositoryIndex(oip.RepositoryIndexRequest(ready=ready), timeout=self.timeout)
        return list(reply.models)

    def load_model(self, name: str) -> None:
        """Load (or reload) the model's newest version; the old one serves until the swap."""
        self.inference.RepositoryModelLoad(oip.RepositoryModelLoadRequest(model_name=name),
                                           timeout=self.timeout)

    def unload_model(self, name: str) -> None:
        """Free the model's session; calls to it are refused (UNAVAILABLE) until it is loaded."""
        self.inference.RepositoryModelUnload(oip.RepositoryModelUnloadRequest(model_name=name),
                                             timeout=self.timeout)

    # -- generators and effects: an effect is a generator with inputs -----------------------

    @staticmethod
    def request(generator: str, parameters: Parameters = None, *, seed: int | None = None, count: int = 1,
                fmt: str = "") -> pb.GenerateRequest:
        return seeded(pb.GenerateRequest(generator=generator, parameters=to_struct(parameters), count=count,
                                         format=fmt), seed)

    @staticmethod
    def effect_request(effect: str, inputs: Inputs, parameters: Parameters = None, *, seed: int | None = None,
                       fmt: str = "") -> pb.ApplyEffectRequest:
        """``inputs``: file bytes, or (name, bytes) pairs to keep the names in the provenance."""
        media = [pb.MediaInput(name=i[0], data=i[1]) if isinstance(i, tuple) else pb.MediaInput(data=i)
                 for i in inputs]
        return seeded(pb.ApplyEffectRequest(effect=effect, parameters=to_struct(parameters), inputs=media,
                                            format=fmt), seed)

    def generate(self, generator: str, parameters: Parameters = None, *, seed: int | None = None,
                 count: int = 1, fmt: str = "") -> pb.GenerateResponse:
        return self._send(self.request(generator, parameters, seed=seed, count=count, fmt=fmt))

    def stream_generate(self, generator: str, parameters: Parameters = None, *, seed: int | None = None,
                        count: int = 1, fmt: str = "") -> Iterator[pb.GenerateEvent]:
        request = self.request(generator, parameters, seed=seed, count=count, fmt=fmt)
        yield from self._send(request, stream=True)

    def apply_effect(self, effect: str, inputs: Inputs, parameters: Parameters = None, *,
                     seed: int | None = None, fmt: str = "") -> pb.ApplyEffectResponse:
        return self._send(self.effect_request(effect, inputs, parameters, seed=seed, fmt=fmt))

    def stream_apply_effect(self, effect: str, inputs: Inputs, parameters: Parameters = None, *,
                            seed: int | None = None, fmt: str = "") -> Iterator[pb.ApplyEffectEvent]:
        request = self.effect_request(effect, inputs, parameters, seed=seed, fmt=fmt)
        yield from self._send(request, stream=True)

    def _send(self, request: MediaRequest, stream: bool = False) -> Any:
        """The one call path of both: the reply, or with ``stream`` the events as they come."""
        unary, streaming = RPCS[type(request)]
        return getattr(self.stub, streaming if stream else unary)(request, timeout=self.timeout)

    # -- batch jobs -------------------------------------------------------------------------

    def submit_job(self, job: jobs_pb2.JobSpec) -> operations_pb2.Operation:
        return self.jobs.SubmitJob(jobs_pb2.SubmitJobRequest(job=job), timeout=self.timeout)

    def get_job(self, name: str) -> operations_pb2.Operation:
        return self.operations.GetOperation(operations_pb2.GetOperationRequest(name=job_name(name)),
                                            timeout=self.timeout)

    def list_jobs(self, filter: str = "", page_size: int = 0) -> list[operations_pb2.Operation]:
        found: list[operations_pb2.Operation] = []
        token = ""
        while True:
            reply = self.operations.ListOperations(operations_pb2.ListOperationsRequest(
                name="jobs", filter=filter, page_size=page_size, page_token=token), timeout=self.timeout)
            found.extend(reply.operations)
            token = reply.next_page_token
            if not token:
                return found

    def job_items(self, name: str, page_size: int = 0) -> Iterator[jobs_pb2.JobItem]:
        """Every item (frame) of the job, page after page, in index order."""
        token = ""
        while True:
            reply = self.jobs.ListJobItems(jobs_pb2.ListJobItemsRequest(
                name=job_name(name), page_size=page_size, page_token=token), timeout=self.timeout)
            yield from reply.items
            token = reply.next_page_token
            if not token:
                return

    def cancel_job(self, name: str) -> None:
        self.operations.CancelOperation(operations_pb2.CancelOperationRequest(name=job_name(name)),
                                        timeout=self.timeout)

    def delete_job(self, name: str) -> None:
        self.operations.DeleteOperation(operations_pb2.DeleteOperationRequest(name=job_name(name)),
                                        timeout=self.timeout)

    def wait_job(self, name: str, timeout: float) -> operations_pb2.Operation:
        """The job once it is done, or as it stands after ``timeout`` seconds."""
        request = operations_pb2.WaitOperationRequest(
            name=job_name(name), timeout=duration_pb2.Duration(seconds=int(timeout),
                                                               nanos=int(timeout % 1 * 1e9)))
        return self.operations.WaitOperation(request, timeout=timeout + 30)

    def watch_job(self, name: str) -> Iterator[jobs_pb2.JobEvent]:
        yield from self.jobs.WatchJob(jobs_pb2.WatchJobRequest(name=job_name(name)))


    # -- feedback: ratings, picks and keeps, per user ----------------------------------------

    def record_feedback(self, event: fb.FeedbackEvent) -> fb.FeedbackEvent:
        """Record one event (see ``feedback_event``); returns it as stored, with its id and time."""
        return self.feedback.RecordFeedback(fb.RecordFeedbackRequest(event=event), timeout=self.timeout)

    def list_feedback(self, user: str = "", page_size: int = 0) -> list[fb.FeedbackEvent]:
        """Every event of ``user`` (empty: the API key's own), oldest first, page after page."""
        found: list[fb.FeedbackEvent] = []
        token = ""
        while True:
            reply = self.feedback.ListFeedback(fb.ListFeedbackRequest(user=user, page_size=page_size,
                                                                      page_token=token), timeout=self.timeout)
            found.extend(reply.events)
            token = reply.next_page_token
            if not token:
                return found

    def export_feedback(self, user: str = "", all_users: bool = False) -> Iterator[fb.FeedbackEvent]:
        """The events of ``user`` (or, with ``all_users``, of every user the key recorded) as they stream."""
        yield from self.feedback.ExportFeedback(fb.ExportFeedbackRequest(user=user, all_users=all_users))

    def forget_user(self, user: str = "") -> int:
        """Delete every event of ``user`` (empty: the API key's own); how many were deleted."""
        return int(self.feedback.ForgetUser(fb.ForgetUserRequest(user=user), timeout=self.timeout).deleted)

    def recommend(self, kind: str = "artifacts", user: str = "", k: int = 10, generator: str = "",
                  refresh: bool = False) -> fb.RecommendResponse:
        """What ``user`` (empty: the API key's own) likely wants next, best first, each with a reason.

        ``kind``: "generators", "presets" or "artifacts"; ``generator`` keeps to one generator;
        ``refresh`` refits the model on every event so far before answering.
        """
        value = fb.RecommendKind.Value(f"RECOMMEND_KIND_{kind.upper()}") if kind else 0
        request = fb.RecommendRequest(user=user, kind=value, k=k, generator=generator,  # type: ignore[arg-type]
                                      refresh=refresh)
        return self.feedback.Recommend(request, timeout=self.timeout)


def job_name(name: str) -> str:
    """Accept a bare job id or the Operation name."""
    return name if name.startswith("jobs/") else f"jobs/{name}"

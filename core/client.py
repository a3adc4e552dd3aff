"""A small synchronous Python client for museforge.v1, used by the CLI and the tests."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import grpc
from google.longrunning import operations_pb2_grpc as ops_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .client_auth import BearerKey
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
    local_failure,
    retry_after,
    typed_errors,
)
from .client_feedback import FeedbackCalls
from .client_jobs import JobCalls, job_name
from .client_requests import (
    CLIENT_TIMEOUT,
    Inputs,
    Timeout,
    artifact_ref,
    check_port,
    counted,
    deadline,
    dial_target,
    feedback_event,
    media_inputs,
    seconds,
    seeded,
)
from .client_structs import to_struct
from .config import DEFAULT_ADDRESS
from .inference import grpc_service_pb2 as oip
from .inference import grpc_service_pb2_grpc as oip_grpc
from .near_names import did_you_mean
from .v1 import feedback_pb2_grpc as feedback_grpc
from .v1 import jobs_pb2_grpc as jobs_grpc
from .v1 import museforge_pb2 as pb
from .v1 import museforge_pb2_grpc as pb_grpc

__all__ = [
    "CLIENT_TIMEOUT", "BearerKey", "Cancelled", "Client", "DeadlineExceeded", "FailedPrecondition",
    "Internal", "InvalidArgument", "MuseforgeError", "NotFound", "PermissionDenied", "ResourceExhausted",
    "Unauthenticated", "Unavailable", "Unimplemented", "UnknownSchema", "artifact_ref", "check_port",
    "feedback_event",
    "field_violations",
    "job_name", "retry_after", "seeded", "to_struct",
]

MAX_MESSAGE = 512 * 1024 * 1024  # the server's default limit

Parameters = Mapping[str, Any] | None
MediaRequest = pb.GenerateRequest | pb.ApplyEffectRequest
# The unary and the streaming method of each request: the rest of a call is the same for both.
RPCS: dict[type[MediaRequest], tuple[str, str]] = {
    pb.GenerateRequest: ("Generate", "StreamGenerate"),
    pb.ApplyEffectRequest: ("ApplyEffect", "StreamApplyEffect"),
}


class UnknownSchema(NotFound, KeyError):
    """``schema(name)`` of a name the server has not: a NotFound, and a KeyError as it was before."""

    def __init__(self, error: MuseforgeError) -> None:
        super().__init__(error.call)

    def __str__(self) -> str:
        return NotFound.__str__(self)


@typed_errors
class Client(JobCalls, FeedbackCalls):
    """Talks to a running museforge server.

    >>> with Client("127.0.0.1:50051") as client:
    ...     result = client.generate("image.digits", {"digit": 7}, seed=42, count=4)

    A failed call raises the ``MuseforgeError`` of its status code (``InvalidArgument``,
    ``NotFound``, ...), a ``grpc.RpcError`` too; a stream raises it while it is iterated.
    Every call takes a ``timeout`` in seconds for itself (None: no limit; left out, or
    CLIENT_TIMEOUT: the client's own), checked as the client's is.
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
        address = dial_target(address)
        self.address = address
        self.timeout = seconds(timeout)
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
        # Made once: a stub made on a closed channel crashed the process (grpcio 1.85).
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; later calls raise ValueError."""
        self.raw_channel.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects (raises grpc.FutureTimeoutError otherwise)."""
        grpc.channel_ready_future(self.raw_channel).result(timeout=timeout)

    def health(self, service: str = "", *, timeout: Timeout = CLIENT_TIMEOUT) -> str:
        """SERVING, NOT_SERVING or SERVICE_UNKNOWN: of the server (""), of one service
        (``museforge.v1.Museforge``), of a plugin (``museforge.plugin/image``) or a model."""
        reply = self.health_stub.Check(health_pb2.HealthCheckRequest(service=service),
                                       timeout=deadline(timeout, self.timeout))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def plugins(self, *, timeout: Timeout = CLIENT_TIMEOUT) -> list[pb.PluginInfo]:
        """Every plugin the server found, with what it registered or why it failed."""
        reply = self.stub.ListPlugins(pb.ListPluginsRequest(), timeout=deadline(timeout, self.timeout))
        return list(reply.plugins)

    def generators(self, modality: str = "", *, timeout: Timeout = CLIENT_TIMEOUT) -> list[pb.GeneratorInfo]:
        """The generators served ("image", "audio" or "mesh" keeps to one modality)."""
        reply = self.stub.ListGenerators(pb.ListGeneratorsRequest(modality=modality),
                                         timeout=deadline(timeout, self.timeout))
        return list(reply.generators)

    def effects(self, modality: str = "", *, timeout: Timeout = CLIENT_TIMEOUT) -> list[pb.EffectInfo]:
        """The effects served ("image" or "video" keeps to one modality)."""
        reply = self.stub.ListEffects(pb.ListEffectsRequest(modality=modality),
                                      timeout=deadline(timeout, self.timeout))
        return list(reply.effects)

    def statistics(self, model: str = "", *, timeout: Timeout = CLIENT_TIMEOUT) -> list[pb.ModelStatistics]:
        """Per-model counts and times (``model`` empty: every model)."""
        reply = self.stub.GetModelStatistics(pb.GetModelStatisticsRequest(model=model),
                                             timeout=deadline(timeout, self.timeout))
        return list(reply.models)

    def schema(self, name: str, *, timeout: Timeout = CLIENT_TIMEOUT) -> dict[str, Any]:
        """The JSON Schema of a generator's or an effect's parameters; NotFound naming what there is.
        (``timeout`` is for each of its two calls.)"""
        generators = self.generators(timeout=timeout)
        listed: dict[str, str] = {info.name: info.parameters_schema for info in generators}
        if name not in listed:
            listed.update((info.name, info.parameters_schema) for info in self.effects(timeout=timeout))
        if name not in listed:
            known, near = ", ".join(sorted(listed)) or "none", did_you_mean(name, listed)
            said = f"unknown generator or effect {name!r}{near}; this server has {known}"
            raise UnknownSchema(local_failure(grpc.StatusCode.NOT_FOUND, said))
        return dict(json.loads(listed[name]))

    # -- the model repository (Triton's extension of the OIP; the key needs the admin scope) --

    def models(self, ready: bool = False, *,
               timeout: Timeout = CLIENT_TIMEOUT) -> list[oip.RepositoryIndexResponse.ModelIndex]:
        """Every served model's name, version, state (READY, UNAVAILABLE, LOADING) and reason;
        with ``ready``, only the READY ones."""
        reply = self.inference.RepositoryIndex(oip.RepositoryIndexRequest(ready=ready),
                                               timeout=deadline(timeout, self.timeout))
        return list(reply.models)

    def load_model(self, name: str, *, timeout: Timeout = CLIENT_TIMEOUT) -> None:
        """Load (or reload) the model's newest version; the old one serves until the swap."""
        self.inference.RepositoryModelLoad(oip.RepositoryModelLoadRequest(model_name=name),
                                           timeout=deadline(timeout, self.timeout))

    def unload_model(self, name: str, *, timeout: Timeout = CLIENT_TIMEOUT) -> None:
        """Free the model's session; calls to it are refused (UNAVAILABLE) until it is loaded."""
        self.inference.RepositoryModelUnload(oip.RepositoryModelUnloadRequest(model_name=name),
                                             timeout=deadline(timeout, self.timeout))

    # -- generators and effects: an effect is a generator with inputs -----------------------

    @staticmethod
    def request(generator: str, parameters: Parameters = None, *, seed: int | None = None, count: int = 1,
                fmt: str = "") -> pb.GenerateRequest:
        """The GenerateRequest ``generate`` sends, checked as it checks it, for a stub called directly."""
        return seeded(pb.GenerateRequest(generator=generator, parameters=to_struct(parameters),
                                         count=counted(count), format=fmt), seed)

    @staticmethod
    def effect_request(effect: str, inputs: Inputs, parameters: Parameters = None, *, seed: int | None = None,
                       fmt: str = "") -> pb.ApplyEffectRequest:
        """``inputs``: file bytes, (name, bytes) pairs to keep the names in the provenance, or paths."""
        return seeded(pb.ApplyEffectRequest(effect=effect, parameters=to_struct(parameters),
                                            inputs=media_inputs(inputs), format=fmt), seed)

    def generate(self, generator: str, parameters: Parameters = None, *, seed: int | None = None,
                 count: int = 1, fmt: str = "", timeout: Timeout = CLIENT_TIMEOUT) -> pb.GenerateResponse:
        """``count`` artifacts in one reply; ``seed`` unset lets the server pick (the reply says
        which); ``fmt`` empty is the generator's first format; ``timeout`` in seconds overrides the
        client's for this call (None: no limit; left out: the client's)."""
        request = self.request(generator, parameters, seed=seed, count=count, fmt=fmt)
        return self._send(request, timeout=timeout)

    def stream_generate(self, generator: str, parameters: Parameters = None, *, seed: int | None = None,
                        count: int = 1, fmt: str = "",
                        timeout: Timeout = CLIENT_TIMEOUT) -> Iterator[pb.GenerateEvent]:
        """The seed, progress, chunks and each artifact as they come; closing the iterator
        (``.close()``, or leaving a ``for`` loop early) cancels the call."""
        request = self.request(generator, parameters, seed=seed, count=count, fmt=fmt)
        yield from self._send(request, stream=True, timeout=timeout)

    def apply_effect(self, effect: str, inputs: Inputs, parameters: Parameters = None, *,
                     seed: int | None = None, fmt: str = "",
                     timeout: Timeout = CLIENT_TIMEOUT) -> pb.ApplyEffectResponse:
        """The effect over ``inputs`` (file bytes, (name, bytes) pairs, or paths; or one of them
        alone), in one reply; ``timeout`` as ``generate`` takes it."""
        request = self.effect_request(effect, inputs, parameters, seed=seed, fmt=fmt)
        return self._send(request, timeout=timeout)

    def stream_apply_effect(self, effect: str, inputs: Inputs, parameters: Parameters = None, *,
                            seed: int | None = None, fmt: str = "",
                            timeout: Timeout = CLIENT_TIMEOUT) -> Iterator[pb.ApplyEffectEvent]:
        """As ``apply_effect``, with progress and each artifact as they come."""
        request = self.effect_request(effect, inputs, parameters, seed=seed, fmt=fmt)
        yield from self._send(request, stream=True, timeout=timeout)

    def _send(self, request: MediaRequest, stream: bool = False, timeout: Timeout = CLIENT_TIMEOUT) -> Any:
        """The one call path of both: the reply, or with ``stream`` the events as they come."""
        unary, streaming = RPCS[type(request)]
        call = getattr(self.stub, streaming if stream else unary)
        return call(request, timeout=deadline(timeout, self.timeout))

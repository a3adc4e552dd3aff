"""The server interceptor every call passes: API-key authentication, scopes, limits, request bytes.

- Authentication (when ``auth`` is on): ``authorization: Bearer <key>`` metadata, checked
  against the digests of the keys file; missing or unknown → UNAUTHENTICATED, a key
  without the method's scope → PERMISSION_DENIED. The key is checked before the method
  is looked up, so without one every method name answers alike (no free probing of
  which exist). Services in ``open_services`` (health by default) answer without a key.
- Limits, per key (all unauthenticated callers share one "anonymous" budget): calls in
  flight and calls per second (a token bucket); beyond either → RESOURCE_EXHAUSTED with
  a ``google.rpc.RetryInfo`` saying when to try again. Streaming calls to the open
  services (health Watch) are counted together against ``max_open_streams``.
- Request bytes: every request message counts against the server's budget of bytes in
  flight until its call ends (see :mod:`museforge.server.budget`); a message that does not fit
  is refused before it is parsed, and one that cannot be parsed (nested past protobuf's
  limit, say) is INVALID_ARGUMENT rather than grpc's UNKNOWN.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from ..config import FEEDBACK_SERVICE, Settings, keys_path
from ..engine.errors import FieldViolation, InvalidArgument, RequestError, ResourceExhausted
from .auth import ApiKey, KeyError_, KeyFile, KeyRing, bearer_token
from .budget import ByteBudget
from .caller import set_caller
from .interception import Deserializer, Refusal, around, refused, refusing_any_method
from .status import to_status
from .unsafe_setup import UnsafeSetup
from .wire_depth import nesting_depth

Handler = grpc.RpcMethodHandler
ANONYMOUS = "anonymous"
FEEDBACK_SHARE = " (feedback calls)"  # what a key's feedback calls are counted as, beside its others
MAX_WRAPPED = 4096
PARSE_DEPTH = 100  # upb's recursion limit: messages nested deeper than this do not parse
GENERATE_METHODS = {"Generate", "StreamGenerate", "ApplyEffect", "StreamApplyEffect"}
# Open whatever open_services says: the OIP's own liveness and readiness (what a KServe or
# Kubernetes probe of /v2/health/* asks), which tell nothing a health check does not.
OPEN_METHODS = frozenset({"/inference.GRPCInferenceService/ServerLive",
                          "/inference.GRPCInferenceService/ServerReady"})
SERVICE_SCOPES = {
    "museforge.v1.Jobs": "jobs",
    "museforge.v1.Feedback": "generate",  # whoever may generate may say what they think of it
    "google.longrunning.Operations": "jobs",
    # What the protos say, which any key may list: a `generate` key's grpcurl needed `admin`.
    "grpc.reflection.v1alpha.ServerReflection": "read",
    "grpc.reflection.v1.ServerReflection": "read",
}
# The size of the request message being handled, set by the deserializer in the call's own
# task (grpc parses a unary request there, just before the behaviour runs).
_REQUEST_BYTES: contextvars.ContextVar[int] = contextvars.ContextVar("museforge_request_bytes", default=0)


def scope_of(method: str) -> str:
    """The scope a full method name (``/package.Service/Method``) needs."""
    _, service, name = method.split("/", 2) if method.count("/") >= 2 else ("", method, "")
    if service == "museforge.v1.Museforge":
        return "generate" if name in GENERATE_METHODS else "read"
    if service == "inference.GRPCInferenceService":
        return "infer" if name == "ModelInfer" else "admin" if name.startswith("Repository") else "read"
    return SERVICE_SCOPES.get(service, "admin")


@dataclass
class _Bucket:
    tokens: float
    stamp: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Limits:
    max_concurrent: int = 0  # per key; 0: no limit
    per_second: float = 0.0  # per key; 0: no limit
    burst: float = 0.0  # bucket size; 0: twice the rate (at least 1)
    request_bytes: int = 1 << 30  # request bytes in flight over all calls
    open_streams: int = 64  # streaming calls to the open services at once


class Unreadable:
    """What a request message became when it could not be taken in: the error to answer with."""

    __slots__ = ("error",)

    def __init__(self, error: RequestError) -> None:
        self.error = error


def _undecodable(error: DecodeError, raw: bytes, deserialize: Deserializer) -> InvalidArgument:
    message = getattr(deserialize, "__self__", None)  # the generated Message class
    too_deep = "depth" in str(error).lower() or (  # some runtimes name the limit, some do not
        message is not None and nesting_depth(raw, message.DESCRIPTOR, PARSE_DEPTH + 1) > PARSE_DEPTH)
    # With a field violation like every refusal (clients read those, not the text): the
    # parameters where the message has them (a Struct is where nesting goes), else the request.
    fields = message.DESCRIPTOR.fields_by_name if message is not None else {}
    where = "parameters" if "parameters" in fields else "request"
    if too_deep:
        problem = "nested too deeply to parse (parameters may nest at most 32 levels)"
        return InvalidArgument(f"the request is {problem}", [FieldViolation(where, problem)])
    problem = "not a valid protobuf message for this method"
    return InvalidArgument(f"the request is {problem}", [FieldViolation("request", problem)])


@dataclass
class _Admitted:
    """What a call holds while it runs, given back when it ends."""

    who: str | None  # the name counted: the key, or the key's feedback share (None: an open service)
    request_bytes: int
    stream: bool
    limits: Limits


class Guard(grpc.aio.ServerInterceptor):
    """Authenticates, authorises and rate-limits every call, and counts the bytes each one holds."""

    def __init__(self, ring: KeyRing | None, open_services: set[str], limits: Limits,
                 budget: ByteBudget | None = None, feedback: Limits | None = None) -> None:
        self.ring = ring
        self.open_services = open_services
        self.limits = limits
        # Feedback calls count in a room of their own per key, so a burst of ratings cannot use
        # up a key's room to generate, nor the other way round.
        self.feedback_limits = feedback or limits
        self.budget = budget or ByteBudget(limits.request_bytes)
        self.in_flight: dict[str, int] = {}
        self.buckets: dict[str, _Bucket] = {}
        self.open_streams = 0
        # Wrapped handlers by (method's handler, key, stream): building one costs more than the
        # checks themselves, and there are only so many methods and keys.
        self._wrapped: dict[tuple[int, str | None, bool], tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        service = method.split("/")[1] if method.count("/") >= 2 else ""
        key: ApiKey | None = None
        open_service = service in self.open_services or method in OPEN_METHODS
        if not open_service and self.ring is not None:
            presented = self._presented(details)
            key = self.ring.find(presented) if presented else None
            if key is None:  # before the lookup: unknown methods answer as known ones do
                reason = "missing API key" if not presented else "unknown API key"
                message = f"{reason}: send 'authorization: Bearer <key>' metadata"
                handler = await continuation(details)
                if handler is None:
                    return refusing_any_method(grpc.StatusCode.UNAUTHENTICATED, message)
                return refused(handler, grpc.StatusCode.UNAUTHENTICATED, message)
        handler = await continuation(details)
        if handler is None:
            return None
        if key is not None and not key.allows(scope_of(method)):
            return refused(handler, grpc.StatusCode.PERMISSION_DENIED,
                           f"key {key.id} lacks the {scope_of(method)!r} scope for {method}")
        who = None if open_service else (key.id if key else ANONYMOUS)
        stream = open_service and bool(handler.unary_stream or handler.stream_stream)
        key_ = (id(handler), who, stream)
        cached = self._wrapped.get(key_)
        if cached is not None and cached[0] is handler:
            return cached[1]
        admin = key is not None and "admin" in key.scopes  # the key found above: no second lookup
        wrapped = self._guarded(handler, who, stream, service == FEEDBACK_SERVICE, admin)
        if len(self._wrapped) >= MAX_WRAPPED:  # keys come and go: start afresh rather than grow
            self._wrapped.clear()
        self._wrapped[key_] = (handler, wrapped)
        return wrapped

    @staticmethod
    def _presented(details: grpc.HandlerCallDetails) -> str:
        raw = dict(details.invocation_metadata or ()).get("authorization", "")
        token = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        return bearer_token(token)

    def _guarded(self, handler: grpc.RpcMethodHandler, who: str | None, stream: bool,
                 feedback: bool, admin: bool) -> grpc.RpcMethodHandler:
        key_id = who if self.ring is not None else None  # without auth every caller is "anonymous"
        limits = self.feedback_limits if feedback else self.limits
        counted = who + FEEDBACK_SHARE if feedback and who is not None else who

        async def start(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> _Admitted | Refusal:
            if isinstance(request, Unreadable):
                return Refusal(to_status(request.error))
            admitted = _Admitted(counted, _REQUEST_BYTES.get(), stream, limits)
            refusal = self.admit_call(admitted)
            if refusal is not None:
                return Refusal(to_status(refusal))
            set_caller(key_id, admin)  # the call's own context: handlers that keep data per key read it
            return admitted

        def finish(request: Any, context: Any, admitted: _Admitted, error: BaseException | None) -> None:
            self.release_call(admitted)

        unary_request = not (handler.stream_unary or handler.stream_stream)
        return around(handler, start, finish, self._sized if unary_request else lambda d: d)

    def _sized(self, deserialize: Deserializer) -> Deserializer:
        """A deserializer that refuses what does not fit the byte budget, before parsing it."""
        budget = self.budget

        def read(raw: bytes) -> Any:
            _REQUEST_BYTES.set(len(raw))
            if not budget.fits(len(raw)):
                return Unreadable(self._no_room(len(raw)))
            try:
                return deserialize(raw) if deserialize is not None else raw
            except DecodeError as exc:
                return Unreadable(_undecodable(exc, raw, deserialize))

        return read

    def _no_room(self, size: int) -> ResourceExhausted:
        return ResourceExhausted(
            f"the server holds too many request bytes at once to take {size:,} more "
            f"(max_request_bytes_in_flight {self.budget.total:,}); try again shortly", 1.0)

    def admit_call(self, admitted: _Admitted) -> ResourceExhausted | None:
        """None when the call may run (and is counted), or the overload error to refuse it with."""
        if admitted.stream and self.open_streams >= self.limits.open_streams:
            return ResourceExhausted(f"{self.limits.open_streams} streams to open services already "
                                     "open (max_open_streams)", 1.0)
        if admitted.who is not None:
            refusal = self.admit(admitted.who, admitted.limits)
            if refusal is not None:
                return refusal
        if admitted.request_bytes and not self.budget.try_acquire(admitted.request_bytes):
            if admitted.who is not None:
                self.release(admitted.who)
            return self._no_room(admitted.request_bytes)
        self.open_streams += admitted.stream
        return None

    def release_call(self, admitted: _Admitted) -> None:
        self.open_streams -= admitted.stream
        if admitted.request_bytes:
            self.budget.release(admitted.request_bytes)
        if admitted.who is not None:
            self.release(admitted.who)

    def admit(self, who: str, limits: Limits | None = None) -> ResourceExhausted | None:
        """None to let the call in (and count it), or the overload error to refuse it with."""
        limits = limits or self.limits
        if limits.max_concurrent and self.in_flight.get(who, 0) >= limits.max_concurrent:
            return ResourceExhausted(f"{who}: {limits.max_concurrent} calls already in flight", 0.25)
        if limits.per_second:
            burst = limits.burst or max(1.0, 2 * limits.per_second)
            bucket = self.buckets.setdefault(who, _Bucket(burst))
            now = time.monotonic()
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * limits.per_second)
            bucket.stamp = now
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / limits.per_second
                return ResourceExhausted(f"{who}: over {limits.per_second:g} calls per second", wait)
            bucket.tokens -= 1.0
        self.in_flight[who] = self.in_flight.get(who, 0) + 1
        return None

    def release(self, who: str) -> None:
        self.in_flight[who] -= 1


def build_guard(settings: Settings) -> Guard:
    """The guard the settings ask for: the API keys (when auth is on) and the limits."""
    ring = None
    if settings.auth:
        try:
            keys = KeyFile(keys_path(settings)).load()
        except KeyError_ as exc:
            raise UnsafeSetup(str(exc)) from exc
        if not keys:
            raise UnsafeSetup(
                f"auth is on but {keys_path(settings)} holds no API key; create one with "
                "`museforge keys create --scopes generate,jobs`"
            )
        ring = KeyRing(keys)
    limits = Limits(settings.max_concurrent_per_key, settings.requests_per_second_per_key,
                    request_bytes=settings.max_request_bytes_in_flight,
                    open_streams=settings.max_open_streams)
    feedback = Limits(settings.feedback_max_concurrent_per_key, settings.feedback_requests_per_second_per_key)
    return Guard(ring, set(settings.open_services), limits, feedback=feedback)

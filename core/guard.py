"""The server interceptor every call passes: API-key authentication, scopes, per-key limits.

- Authentication (when ``auth`` is on): ``authorization: Bearer <key>`` metadata, checked
  against the digests of the keys file; missing or unknown → UNAUTHENTICATED, a key
  without the method's scope → PERMISSION_DENIED. Services in ``open_services`` (health
  by default) answer without a key.
- Limits, per key (all unauthenticated callers share one "anonymous" budget): calls in
  flight and calls per second (a token bucket); beyond either → RESOURCE_EXHAUSTED with
  a ``google.rpc.RetryInfo`` saying when to try again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from .auth import ApiKey, KeyRing

ANONYMOUS = "anonymous"
GENERATE_METHODS = {"Generate", "StreamGenerate", "ApplyEffect", "StreamApplyEffect"}
SERVICE_SCOPES = {
    "museforge.v1.Jobs": "jobs",
    "google.longrunning.Operations": "jobs",
}


def scope_of(method: str) -> str:
    """The scope a full method name (``/package.Service/Method``) needs."""
    _, service, name = method.split("/", 2) if method.count("/") >= 2 else ("", method, "")
    if service == "museforge.v1.Museforge":
        return "generate" if name in GENERATE_METHODS else "read"
    if service == "inference.GRPCInferenceService":
        return "infer" if name == "ModelInfer" else "read"
    return SERVICE_SCOPES.get(service, "admin")


def retry_status(code: grpc.StatusCode, message: str, retry_after: float) -> grpc.Status:
    """A status with a RetryInfo detail, as google.rpc clients expect for overload."""
    status = status_pb2.Status(code=code.value[0], message=message)
    detail = any_pb2.Any()
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(1, int(retry_after * 1e9)))
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status.details.append(detail)
    return rpc_status.to_status(status)


assert grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] == code_pb2.RESOURCE_EXHAUSTED


@dataclass
class _Bucket:
    tokens: float
    stamp: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Limits:
    max_concurrent: int = 0  # per key; 0: no limit
    per_second: float = 0.0  # per key; 0: no limit
    burst: float = 0.0  # bucket size; 0: twice the rate (at least 1)


class Guard(grpc.aio.ServerInterceptor):
    """Authenticates, authorises and rate-limits every call outside the open services."""

    def __init__(self, ring: KeyRing | None, open_services: set[str], limits: Limits) -> None:
        self.ring = ring
        self.open_services = open_services
        self.limits = limits
        self.in_flight: dict[str, int] = {}
        self.buckets: dict[str, _Bucket] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        if method.split("/")[1] in self.open_services:
            return handler
        key: ApiKey | None = None
        if self.ring is not None:
            raw = dict(details.invocation_metadata or ()).get("authorization", "")
            token = raw.decode("latin-1") if isinstance(raw, bytes) else raw
            presented = token[7:].strip() if token[:7].lower() == "bearer " else ""
            key = self.ring.find(presented) if presented else None
            if key is None:
                reason = "missing API key" if not presented else "unknown API key"
                return _denied(
                    handler,
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"{reason}: send 'authorization: Bearer <key>' metadata",
                )
            scope = scope_of(method)
            if not key.allows(scope):
                return _denied(
                    handler,
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"key {key.id} lacks the {scope!r} scope for {method}",
                )
        return _wrapped(handler, self, key.id if key else ANONYMOUS)

    def admit(self, who: str) -> grpc.Status | None:
        """None to let the call in (and count it), or the status to refuse it with."""
        limits = self.limits
        if limits.max_concurrent and self.in_flight.get(who, 0) >= limits.max_concurrent:
            return retry_status(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{who}: {limits.max_concurrent} calls already in flight",
                0.25,
            )
        if limits.per_second:
            burst = limits.burst or max(1.0, 2 * limits.per_second)
            bucket = self.buckets.setdefault(who, _Bucket(burst))
            now = time.monotonic()
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * limits.per_second)
            bucket.stamp = now
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / limits.per_second
                return retry_status(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{who}: over {limits.per_second:g} calls per second",
                    wait,
                )
            bucket.tokens -= 1.0
        self.in_flight[who] = self.in_flight.get(who, 0) + 1
        return None

    def release(self, who: str) -> None:
        self.in_flight[who] -= 1


Behaviour = Callable[..., Any]


def replace_behaviour(
    handler: grpc.RpcMethodHandler, unary: Behaviour, streaming: Behaviour
) -> grpc.RpcMethodHandler:
    """The same method with a new behaviour, of the kind the original has."""
    args = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **args)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **args)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **args)
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **args)


def _denied(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def unary(_: Behaviour) -> Behaviour:
        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(code, message)

        return refuse

    def streaming(_: Behaviour) -> Behaviour:
        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            await context.abort(code, message)
            yield  # pragma: no cover - abort raised

        return refuse

    return replace_behaviour(handler, unary, streaming)


def _wrapped(handler: grpc.RpcMethodHandler, guard: Guard, who: str) -> grpc.RpcMethodHandler:

    async def refuse(context: grpc.aio.ServicerContext[Any, Any], status: grpc.Status) -> None:
        await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)

    def unary(inner: Behaviour) -> Behaviour:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            refused = guard.admit(who)
            if refused is not None:
                await refuse(context, refused)
            try:
                return await inner(request, context)
            finally:
                guard.release(who)

        return call

    def streaming(inner: Behaviour) -> Behaviour:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            refused = guard.admit(who)
            if refused is not None:
                await refuse(context, refused)
            try:
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:  # a behaviour that writes with context.write and returns
                    await result
            finally:
                guard.release(who)

        return call

    return replace_behaviour(handler, unary, streaming)

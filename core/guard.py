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
from dataclasses import dataclass, field
from typing import Any

import grpc

from .auth import ApiKey, KeyRing, bearer_token
from .errors import ResourceExhausted
from .interception import WrappingInterceptor, around, refused

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


@dataclass
class _Bucket:
    tokens: float
    stamp: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Limits:
    max_concurrent: int = 0  # per key; 0: no limit
    per_second: float = 0.0  # per key; 0: no limit
    burst: float = 0.0  # bucket size; 0: twice the rate (at least 1)


class Guard(WrappingInterceptor):
    """Authenticates, authorises and rate-limits every call outside the open services."""

    def __init__(self, ring: KeyRing | None, open_services: set[str], limits: Limits) -> None:
        self.ring = ring
        self.open_services = open_services
        self.limits = limits
        self.in_flight: dict[str, int] = {}
        self.buckets: dict[str, _Bucket] = {}

    def wrap(self, handler: grpc.RpcMethodHandler, method: str,
             details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        if method.split("/")[1] in self.open_services:
            return handler
        key: ApiKey | None = None
        if self.ring is not None:
            raw = dict(details.invocation_metadata or ()).get("authorization", "")
            token = raw.decode("latin-1") if isinstance(raw, bytes) else raw
            presented = bearer_token(token)
            key = self.ring.find(presented) if presented else None
            if key is None:
                reason = "missing API key" if not presented else "unknown API key"
                return refused(
                    handler,
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"{reason}: send 'authorization: Bearer <key>' metadata",
                )
            scope = scope_of(method)
            if not key.allows(scope):
                return refused(
                    handler,
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"key {key.id} lacks the {scope!r} scope for {method}",
                )
        who = key.id if key else ANONYMOUS

        async def admit(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            refusal = self.admit(who)
            if refusal is not None:
                status = refusal.to_status()
                await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)

        def release(request: Any, context: Any, token: Any, error: BaseException | None) -> None:
            self.release(who)

        return around(handler, admit, release)

    def admit(self, who: str) -> ResourceExhausted | None:
        """None to let the call in (and count it), or the overload error to refuse it with."""
        limits = self.limits
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

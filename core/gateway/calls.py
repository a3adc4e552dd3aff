"""The gateway's calls into the server's own services, in-process: same handlers, same interceptors.

The servicers are registered on a :class:`ServiceRegistry` as well as on the gRPC server
(the generated ``add_*Servicer_to_server`` functions take either), so an HTTP request runs
the very method handler a gRPC call runs, behind the same interceptor chain (tracing,
metrics, the guard), resolved the way grpc resolves it: each interceptor's
``intercept_service`` with a continuation to the next, the last one looking the method up.
No socket and no serialization in between: one call, validated and counted once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from .context import CallContext

log = logging.getLogger("museforge.gateway")

Handler = grpc.RpcMethodHandler
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Details(grpc.HandlerCallDetails):
    method: str
    invocation_metadata: Metadata


class CallError(grpc.RpcError, grpc.Call):
    """A finished in-process call's non-OK status, read like a failed gRPC call's."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: Sequence[tuple[str, Any]] = ()) -> None:
        super().__init__(details)
        self._code, self._details, self._trailing = code, details, tuple(trailing)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailing

    def initial_metadata(self) -> tuple[tuple[str, Any], ...]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> Any:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


class ServiceRegistry:
    """What ``add_*Servicer_to_server`` registers on, passed on to the real server (if any)."""

    def __init__(self, server: Any = None) -> None:
        self.server = server
        self.generic: list[grpc.GenericRpcHandler] = []
        self.registered: dict[str, Handler] = {}

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        if self.server is not None:
            self.server.add_generic_rpc_handlers(handlers)
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        if self.server is not None:
            self.server.add_registered_method_handlers(service, handlers)
        self.registered.update({f"/{service}/{name}": handler for name, handler in handlers.items()})

    def __getattr__(self, name: str) -> Any:  # add_insecure_port, start, ...: the server's own
        if self.server is None:
            raise AttributeError(name)
        return getattr(self.server, name)

    def lookup(self, details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self.registered.get(details.method)
        if handler is not None:
            return handler
        for generic in self.generic:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None


def _failure(context: CallContext, exc: BaseException | None) -> CallError | None:
    """The call's error from its context (set or aborted), else from what its method raised."""
    code = context.code()
    if code is not None and code != grpc.StatusCode.OK:
        return CallError(code, context.details() or "", context.trailing_metadata())
    if exc is None or isinstance(exc, grpc.aio.AbortError):
        return None
    if isinstance(exc, CallError):
        return exc
    log.error("in-process call raised", exc_info=exc)
    return CallError(grpc.StatusCode.UNKNOWN, f"Unexpected {type(exc).__name__} in the method")


class InProcess:
    """Runs a method by name with a :class:`CallContext`, through the interceptors, as grpc would."""

    def __init__(self, registry: ServiceRegistry, interceptors: Sequence[grpc.aio.ServerInterceptor],
                 max_reply_bytes: int) -> None:
        self.registry = registry
        self.interceptors = tuple(interceptors)
        self.max_reply_bytes = max_reply_bytes

    async def handler(self, method: str, metadata: Metadata) -> Handler:
        found = await self._resolve(0, _Details(method, metadata))
        if found is None:
            raise CallError(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        return found

    def _resolve(self, index: int, details: grpc.HandlerCallDetails) -> Awaitable[Handler | None]:
        if index == len(self.interceptors):
            return _ready(self.registry.lookup(details))
        continuation: Any = _Continuation(self, index + 1)
        return self.interceptors[index].intercept_service(continuation, details)

    async def unary(self, method: str, request: Message, context: CallContext) -> Message:
        """The reply, or CallError with the status the call ended with."""
        handler = await self.handler(method, context.metadata)
        behaviour: Any = handler.unary_unary
        if behaviour is None:
            raise CallError(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not a unary method")
        raised: BaseException | None = None
        try:
            reply = await behaviour(request, context)
        except Exception as exc:
            raised, reply = exc, None
        finally:
            context.finish()
        error = _failure(context, raised)
        if error is not None:
            raise error
        if not isinstance(reply, Message):
            raise CallError(grpc.StatusCode.INTERNAL, f"{method} returned no reply")
        self.check_size(reply)
        return reply

    async def stream(self, method: str, request: Message,
                     context: CallContext) -> AsyncGenerator[Message, None]:
        """The replies as the method makes them (yielded or written); CallError if it fails."""
        handler = await self.handler(method, context.metadata)
        behaviour: Any = handler.unary_stream
        if behaviour is None:
            raise CallError(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not a server-streaming method")
        raised: BaseException | None = None
        replies: Any = behaviour(request, context)
        try:
            async for reply in replies:
                yield reply
        except Exception as exc:
            raised = exc
        finally:
            await replies.aclose()
            context.finish()
        error = _failure(context, raised)
        if error is not None:
            raise error

    def check_size(self, reply: Message) -> None:
        """The limit a gRPC client has on a reply (max_message_bytes), kept over HTTP too."""
        size = reply.ByteSize()
        if size > self.max_reply_bytes:
            raise CallError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"the reply of {size} bytes is over max_message_bytes ({self.max_reply_bytes})")


class _Continuation:
    """The rest of the interceptor chain, as grpc hands it to ``intercept_service``."""

    __slots__ = ("chain", "index")

    def __init__(self, chain: InProcess, index: int) -> None:
        self.chain, self.index = chain, index

    def __call__(self, details: grpc.HandlerCallDetails) -> Awaitable[Handler | None]:
        return self.chain._resolve(self.index, details)


async def _ready(value: Handler | None) -> Handler | None:
    return value


def cancelled_status(context: CallContext) -> CallError:
    """What a call ended by the client leaving or by its deadline answers (for logs and metrics)."""
    if context.expired:
        return CallError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    return CallError(grpc.StatusCode.CANCELLED, "the client went away")


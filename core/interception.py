"""Wrapping a gRPC method's behaviour (unary or streaming alike) with work before and after it.

Every server interceptor (the guard, the metrics recorder, tracing) needs the same thing: run
``start`` when a call begins (it may abort the call), run the method, then ``finish``
with whatever ended it. Streaming methods are wrapped so the finish comes after the last
message, whether they yield messages or write them with ``context.write``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Behaviour = Callable[..., Any]
Context = grpc.aio.ServicerContext[Any, Any]
Start = Callable[[Any, Context], Awaitable[Any]]  # (request, context) -> a token for finish
Finish = Callable[[Any, Context, Any, BaseException | None], None]  # (request, context, token, error)


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """An interceptor that replaces each served method's handler (unknown methods pass through)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        return None if handler is None else self.wrap(handler, details.method, details)

    def wrap(self, handler: grpc.RpcMethodHandler, method: str,
             details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        raise NotImplementedError


def replace_behaviour(
    handler: grpc.RpcMethodHandler,
    unary: Callable[[Behaviour], Behaviour],
    streaming: Callable[[Behaviour], Behaviour],
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
    assert handler.stream_stream is not None  # a handler has exactly one of the four
    return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **args)


def around(handler: grpc.RpcMethodHandler, start: Start, finish: Finish) -> grpc.RpcMethodHandler:
    """``handler`` with ``start`` before each call and ``finish`` after it (not if ``start`` aborts)."""

    def unary(inner: Behaviour) -> Behaviour:
        async def call(request: Any, context: Context) -> Any:
            token = await start(request, context)
            error: BaseException | None = None
            try:
                return await inner(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                finish(request, context, token, error)

        return call

    def streaming(inner: Behaviour) -> Behaviour:
        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            token = await start(request, context)
            error: BaseException | None = None
            try:
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:  # a behaviour that writes with context.write and returns
                    await result
            except BaseException as exc:
                error = exc
                raise
            finally:
                finish(request, context, token, error)

        return call

    return replace_behaviour(handler, unary, streaming)


def refused(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """``handler`` answering every call with ``code`` and ``message``, before the method runs."""

    async def abort(request: Any, context: Context) -> None:
        await context.abort(code, message)

    def ignore(request: Any, context: Context, token: Any, error: BaseException | None) -> None:
        return None

    return around(handler, abort, ignore)

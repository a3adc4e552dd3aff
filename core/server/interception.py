"""Wrapping a gRPC method's behaviour (unary or streaming alike) with work before and after it.

Every server interceptor (the guard, the metrics recorder, tracing) needs the same thing: run
``start`` when a call begins (it may refuse the call), run the method, then ``finish``
with whatever ended it. Streaming methods are wrapped so the finish comes after the last
message, whether they yield messages or write them with ``context.write``.

Calls are refused by setting their status (:func:`answer`), never with ``context.abort``:
grpc keeps the AbortError until the call is done, and its traceback holds the handler's
frames, so the request and the context, which holds the error: a reference cycle that
keeps every refused payload in memory until the cycle collector happens to run. For the
same reason the wrappers drop their own references to the request when a call ends, and
clear the frames of whatever exception leaves the method.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Behaviour = Callable[..., Any]
Context = grpc.aio.ServicerContext[Any, Any]
Start = Callable[[Any, Context], Awaitable[Any]]  # (request, context) -> a token for finish, or a Refusal
Finish = Callable[[Any, Context, Any, BaseException | None], None]  # (request, context, token, error)
Deserializer = Callable[[bytes], Any] | None


class Refusal:
    """What a ``start`` returns to answer the call with ``status`` instead of running it."""

    __slots__ = ("status",)

    def __init__(self, status: grpc.Status) -> None:
        self.status = status


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        self.code, self.details, self.trailing_metadata = code, details, trailing_metadata


def status(code: grpc.StatusCode, details: str) -> grpc.Status:
    return _Status(code, details)


def answer(context: Context, result: grpc.Status) -> None:
    """End the call with ``result`` when its behaviour returns (a refusal that raises nothing)."""
    context.set_code(result.code)
    context.set_details(result.details)
    if result.trailing_metadata:
        context.set_trailing_metadata(result.trailing_metadata)


def forget_frames(error: BaseException) -> BaseException:
    """``error`` with the locals of the frames it passed through (and its causes') let go."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)  # frames still running are left alone
        current = current.__cause__ or current.__context__
    return error


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """An interceptor that replaces each served method's handler (unknown methods pass through)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or getattr(handler.stream_stream, "any_method", False):
            return handler  # no such method: nothing to time or trace under a name callers choose
        return self.wrap(handler, details.method, details)

    def wrap(self, handler: grpc.RpcMethodHandler, method: str,
             details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        raise NotImplementedError


def replace_behaviour(
    handler: grpc.RpcMethodHandler,
    unary: Callable[[Behaviour], Behaviour],
    streaming: Callable[[Behaviour], Behaviour],
    deserializer: Callable[[Deserializer], Deserializer] = lambda d: d,
) -> grpc.RpcMethodHandler:
    """The same method with a new behaviour (and request deserializer), of the kind the original has."""
    args = {
        "request_deserializer": deserializer(handler.request_deserializer),
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


def around(handler: grpc.RpcMethodHandler, start: Start, finish: Finish,
           deserializer: Callable[[Deserializer], Deserializer] = lambda d: d) -> grpc.RpcMethodHandler:
    """``handler`` with ``start`` before each call and ``finish`` after it (not if ``start`` refuses)."""

    def unary(inner: Behaviour) -> Behaviour:
        async def call(request: Any, context: Context) -> Any:
            token = await start(request, context)
            if isinstance(token, Refusal):
                answer(context, token.status)
                return None
            error: BaseException | None = None
            try:
                return await inner(request, context)
            except BaseException as exc:
                error = forget_frames(exc)
                raise
            finally:
                finish(request, context, token, error)
                del request, context, error  # an exception's traceback may outlive the call

        return call

    def streaming(inner: Behaviour) -> Behaviour:
        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            token = await start(request, context)
            if isinstance(token, Refusal):
                answer(context, token.status)
                return
            error: BaseException | None = None
            result: Any = None
            try:
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                else:  # a behaviour that writes with context.write and returns
                    await result
            except BaseException as exc:
                error = forget_frames(exc)
                raise
            finally:
                finish(request, context, token, error)
                del request, context, error, result

        return call

    return replace_behaviour(handler, unary, streaming, deserializer)


def refused(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """``handler`` answering every call with ``code`` and ``message``, before the method runs.

    The request is not even parsed: a refused caller costs no parsing and no memory.
    """

    async def refuse(request: Any, context: Context) -> Refusal:
        return Refusal(status(code, message))

    def ignore(request: Any, context: Context, token: Any, error: BaseException | None) -> None:
        return None

    return around(handler, refuse, ignore, lambda _: _unparsed)


def _unparsed(raw: bytes) -> None:
    return None


def refusing_any_method(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler for a method the server may not have, answering ``code`` whatever the call's kind.

    Bidirectional streaming fits every kind of call, and reads nothing the caller sends.
    """

    async def refuse(requests: Any, context: Context) -> None:
        answer(context, status(code, message))

    refuse.any_method = True  # type: ignore[attr-defined]  # see WrappingInterceptor
    return grpc.stream_stream_rpc_method_handler(refuse)

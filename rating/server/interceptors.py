"""Interceptors: bearer-token authentication and the concurrency limit.

Every call must carry `authorization: Bearer <token>` with one of the
configured tokens, else it ends with UNAUTHENTICATED before any handler
runs. With no tokens configured, authentication is off.

At most `max_concurrent_rpcs` calls run at once (a stream counts until it
ends); the next ends with RESOURCE_EXHAUSTED (reason LIMIT_EXCEEDED). The
server's own limit (grpc.aio.server(maximum_concurrent_rpcs=...)) would count
health checks too, so that idle event streams could make a load balancer
see the server as down: here health checks are neither counted nor refused.
Health checks also stay open without a token (load balancers and
orchestrators probe them without credentials).
"""

from __future__ import annotations

import hmac
import inspect

import grpc
from grpc_status import rpc_status

from rating.server.status import google_status

OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


class BearerAuth(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: tuple[str, ...]):
        self._tokens = tuple(t.encode() for t in tokens)

    def _allowed(self, metadata) -> bool:
        for key, value in metadata or ():
            if key == "authorization":
                text = value.decode() if isinstance(value, bytes) else value
                scheme, _, token = text.partition(" ")
                if scheme.lower() != "bearer":
                    return False
                given = token.strip().encode()
                # compare against every token, in constant time per token
                return any([hmac.compare_digest(given, t) for t in self._tokens])
        return False

    async def intercept_service(self, continuation, details):
        if not self._tokens or details.method in OPEN_METHODS or self._allowed(details.invocation_metadata):
            return await continuation(details)
        handler = await continuation(details)
        return None if handler is None else _refusing(handler)


class ConcurrencyLimit(grpc.aio.ServerInterceptor):
    def __init__(self, calls_max: int):
        self.calls_max = calls_max
        self.active = 0
        message = f"more than {calls_max} concurrent calls (max_concurrent_rpcs): retry later"
        self.refusal = rpc_status.to_status(google_status(
            grpc.StatusCode.RESOURCE_EXHAUSTED, message, "LIMIT_EXCEEDED", {"limit": "max_concurrent_rpcs"}))

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method in OPEN_METHODS:
            return handler
        return _counted(handler, self)


def _behavior(handler: grpc.RpcMethodHandler):
    return (handler.stream_stream or handler.stream_unary or handler.unary_stream or handler.unary_unary)


def _with_behavior(handler: grpc.RpcMethodHandler, behavior) -> grpc.RpcMethodHandler:
    """A handler of the same shape (and serializers) running `behavior`."""
    kw = {"request_deserializer": handler.request_deserializer,
          "response_serializer": handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(behavior, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(behavior, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(behavior, **kw)
    return grpc.unary_unary_rpc_method_handler(behavior, **kw)


def _counted(handler: grpc.RpcMethodHandler, limit: ConcurrencyLimit) -> grpc.RpcMethodHandler:
    """The handler, refused when the limit is reached and counted while it runs."""
    inner = _behavior(handler)

    async def admit(context) -> None:
        if limit.active >= limit.calls_max:
            await context.abort_with_status(limit.refusal)
        limit.active += 1

    if inspect.isasyncgenfunction(inner):
        async def streaming(request_or_iterator, context):
            await admit(context)
            try:
                async for response in inner(request_or_iterator, context):
                    yield response
            finally:
                limit.active -= 1
        return _with_behavior(handler, streaming)

    async def call(request_or_iterator, context):
        await admit(context)
        try:
            return await inner(request_or_iterator, context)
        finally:
            limit.active -= 1
    return _with_behavior(handler, call)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape that ends the call with UNAUTHENTICATED."""
    message = "missing or invalid bearer token (metadata 'authorization: Bearer <token>')"

    async def unary(request_or_iterator, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def streaming(request_or_iterator, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    return _with_behavior(handler, streaming if handler.response_streaming else unary)

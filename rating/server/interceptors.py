"""Interceptors: bearer-token authentication, one concern in one place.

Every call must carry `authorization: Bearer <token>` with one of the
configured tokens, else it ends with UNAUTHENTICATED before any handler
runs. Health checks stay open (load balancers and orchestrators probe them
without credentials). With no tokens configured, authentication is off.
"""

from __future__ import annotations

import hmac

import grpc

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


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape that ends the call with UNAUTHENTICATED."""
    message = "missing or invalid bearer token (metadata 'authorization: Bearer <token>')"

    async def unary(request_or_iterator, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def streaming(request_or_iterator, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    kw = {"request_deserializer": handler.request_deserializer,
          "response_serializer": handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming, **kw)
    return grpc.unary_unary_rpc_method_handler(unary, **kw)

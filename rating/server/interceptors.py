"""Interceptors: bearer-token authentication, roles and the concurrency limit.

Every call must carry `authorization: Bearer <token>` with one of the
configured tokens, else it ends with UNAUTHENTICATED before any handler
runs. With no tokens configured, authentication is off. The token's role
and site (rating.server.roles) decide whether it may make the call: a call
outside its role, or to a server of another site, or a resident's call about
another unit than its own, ends with PERMISSION_DENIED (reason
PERMISSION_DENIED) before the handler runs, so it changes nothing. A unary
handler finds its caller in `roles.CALLER` (who acts, for the ledger's rows).

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
from collections.abc import Callable, Mapping

import grpc
from grpc_status import rpc_status

from rating.server import roles
from rating.server.status import google_status

OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


class BearerAuth(grpc.aio.ServerInterceptor):
    """`callers`: token -> roles.Caller (none: authentication off); `site_of`:
    the name of the site the server serves now (LoadConfig may change it)."""

    def __init__(self, callers: Mapping[str, roles.Caller], site_of: Callable[[], str] = lambda: ""):
        self._callers = [(token.encode(), caller) for token, caller in callers.items()]
        self._site_of = site_of

    def _caller(self, metadata) -> roles.Caller | None:
        for key, value in metadata or ():
            if key == "authorization":
                text = value.decode() if isinstance(value, bytes) else value
                scheme, _, token = text.partition(" ")
                if scheme.lower() != "bearer":
                    return None
                given = token.strip().encode()
                found = None
                for known, caller in self._callers:  # every token, in constant time per token
                    if hmac.compare_digest(given, known):
                        found = caller
                return found
        return None

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method in OPEN_METHODS:
            return handler
        if not self._callers:
            return handler
        caller = self._caller(details.invocation_metadata)
        if caller is None:
            return _refusing(handler)
        why = roles.refusal(caller, details.method, self._site_of())
        if why:
            return _refusing(handler, _denial(why, caller, details.method))
        return _acting(handler, caller, roles.scope_field(caller, details.method), details.method)


def _denial(message: str, caller: roles.Caller, method: str) -> grpc.Status:
    return rpc_status.to_status(google_status(grpc.StatusCode.PERMISSION_DENIED, message, "PERMISSION_DENIED",
                                              {"role": caller.role.value, "method": method}))


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


def _acting(handler: grpc.RpcMethodHandler, caller: roles.Caller, scope: str,
            method: str) -> grpc.RpcMethodHandler:
    """The handler run as `caller`: a unary call sees it in roles.CALLER. A
    resident's request is about its unit: `scope` (the field naming the
    account) left empty is set to it, and naming another refuses the call."""
    inner = _behavior(handler)

    def denied(request) -> grpc.Status | None:
        if not scope:
            return None
        if handler.request_streaming:
            return _denial("a resident may not make streaming calls", caller, method)
        named = getattr(request, scope, "")
        if not named:
            setattr(request, scope, caller.unit)
        elif named != caller.unit:
            return _denial(f"a resident token of unit {caller.unit!r} may not see {scope} {named!r}",
                           caller, method)
        return None

    if inspect.isasyncgenfunction(inner):
        async def streaming(request_or_iterator, context):
            refusal = denied(request_or_iterator)
            if refusal is not None:
                await context.abort_with_status(refusal)
            async for response in inner(request_or_iterator, context):
                yield response
        return _with_behavior(handler, streaming)

    async def call(request_or_iterator, context):
        refusal = denied(request_or_iterator)
        if refusal is not None:
            await context.abort_with_status(refusal)
        token = roles.CALLER.set(caller)
        try:
            return await inner(request_or_iterator, context)
        finally:
            roles.CALLER.reset(token)
    return _with_behavior(handler, call)


def _refusing(handler: grpc.RpcMethodHandler, status: grpc.Status | None = None) -> grpc.RpcMethodHandler:
    """A handler of the same shape that ends the call with `status` (None: UNAUTHENTICATED)."""
    message = "missing or invalid bearer token (metadata 'authorization: Bearer <token>')"

    async def refuse(context) -> None:
        if status is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        await context.abort_with_status(status)

    async def unary(request_or_iterator, context):
        await refuse(context)

    async def streaming(request_or_iterator, context):
        await refuse(context)
        yield  # pragma: no cover - makes this an async generator

    return _with_behavior(handler, streaming if handler.response_streaming else unary)

"""The HTTP side: a Starlette app, served by uvicorn on the gRPC server's event loop.

Starlette is a small, well-kept ASGI toolkit (routing, requests, responses
and nothing else), and uvicorn with its httptools parser is the usual ASGI
server: both run on the asyncio loop that `grpc.aio` already drives, so one
process, one loop and one ledger connection serve gRPC and HTTP alike.

    from rating.web.app import build_app, HttpListener
    app = build_app([*webhook_routes(...), *order_routes(...), Route("/sms", reply)])
    listener = await HttpListener.start(app, host="127.0.0.1", port=0)
    ...
    await listener.stop(grace_s=5)

Every error answer is a JSON object `{"error": {"reason", "message", ...}}`;
an unexpected exception is logged with its traceback and answered 500 with
no detail (a gateway retries it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
from collections.abc import Mapping, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from rating.errors import RatingError

log = logging.getLogger("rating.web")


class HttpError(RatingError):
    """An answer other than 2xx, with its status and a reason clients can act on."""

    def __init__(self, status: int, message: str, *, reason: str, **details: object) -> None:
        super().__init__(message)
        self.reason, self.status = reason, status
        self.details = {k: str(v) for k, v in details.items() if v is not None}


def error_response(status: int, reason: str, message: str, **details: str) -> JSONResponse:
    return JSONResponse({"error": {"reason": reason, "message": message, **details}}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HttpError)
    return error_response(exc.status, exc.reason, exc.message, **exc.details)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "INTERNAL", "the server failed; the call may be retried")


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status_code", 404)
    reason = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "BAD_REQUEST")
    detail = getattr(exc, "detail", "")
    return error_response(status, reason, f"{request.method} {request.url.path}: {detail}")


class BearerTokens:
    """Staff calls (orders, settlement reports) carry a bearer token of the server, as
    gRPC calls do: an admin's, or a staff token of this site. `callers` maps each token
    to its (role, site) (rating.server.roles); without tokens the check is off."""

    ROLES = ("admin", "staff")

    def __init__(self, callers: Mapping[str, tuple[str, str]], *, site: str) -> None:
        self.callers = {token.encode(): caller for token, caller in callers.items()}
        self.site = site

    def check(self, request: Request) -> None:
        if not self.callers:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        # every token is compared, so the time taken does not say which one is close
        found = [caller for t, caller in self.callers.items() if hmac.compare_digest(given, t)]
        if scheme.lower() != "bearer" or not found:
            raise HttpError(401, "a bearer token of the server is required", reason="UNAUTHENTICATED")
        role, site = found[0]
        if role not in self.ROLES or (role != "admin" and site != self.site):
            raise HttpError(403, f"a {role} token of site {site!r} may not call this",
                            reason="PERMISSION_DENIED")


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "SERVING"})


def build_app(routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The app serving `routes` and `GET /health`; more routes are one list away."""
    from starlette.exceptions import HTTPException

    return Starlette(routes=[Route("/health", health), *routes],
                     exception_handlers={HttpError: _http_error, HTTPException: _not_found,
                                         Exception: _unexpected})


async def read_body(request: Request, body_bytes_max: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `body_bytes_max`
    (declared or sent): an oversized call is never buffered whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_bytes_max:
        raise _too_large(body_bytes_max)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > body_bytes_max:
            raise _too_large(body_bytes_max)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(body_bytes_max: int) -> HttpError:
    return HttpError(413, f"the body is larger than {body_bytes_max} bytes", reason="BODY_TOO_LARGE",
                     body_bytes_max=body_bytes_max)


class _OnTheLoop(uvicorn.Server):
    """uvicorn without its own signal handling: the gRPC server's loop owns
    SIGTERM and stops both listeners itself."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class HttpListener:
    """A uvicorn server on the running loop, on a socket bound here (port 0: any free port)."""

    def __init__(self, server: _OnTheLoop, task: asyncio.Task, sock: socket.socket) -> None:
        self.server, self.task, self.sock = server, task, sock
        self.port: int = sock.getsockname()[1]

    @classmethod
    async def start(cls, app: Starlette, *, host: str, port: int, grace_s: float = 30.0,
                    backlog: int = 2048) -> HttpListener:
        sock = socket.create_server((host, port), family=_family(host), backlog=backlog, reuse_port=False)
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, http="httptools",
                                server_header=False, timeout_graceful_shutdown=int(grace_s) or 1,
                                backlog=backlog)
        server = _OnTheLoop(config)
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():  # it failed to start: say why
                sock.close()
                task.result()
                raise RuntimeError("the HTTP listener stopped while starting")
            await asyncio.sleep(0.005)
        return cls(server, task, sock)

    async def stop(self) -> None:
        """Stop taking connections, let calls in flight answer (up to the grace), close."""
        self.server.should_exit = True
        await self.task


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET

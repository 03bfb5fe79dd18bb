"""grpc.health.v1.Health: SERVING while the server takes calls, NOT_SERVING while it drains."""

from __future__ import annotations

import asyncio

import grpc

from rating.v1 import health_pb2, health_pb2_grpc

Serving = health_pb2.HealthCheckResponse.ServingStatus


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self, services: list[str]):
        self._status: dict[str, int] = {name: Serving.SERVING for name in ["", *services]}
        self._changed = asyncio.Condition()

    async def set_all(self, status: int) -> None:
        async with self._changed:
            for name in self._status:
                self._status[name] = status
            self._changed.notify_all()

    async def Check(self, request, context):
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request, context):
        last = None
        while True:
            status = self._status.get(request.service, Serving.SERVICE_UNKNOWN)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            async with self._changed:
                await self._changed.wait()

"""What a failed call says: the rich status (google.rpc.Status) in its trailer and
the ErrorInfo inside it, as the server's `rating.server.status` builds them."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status as grpc_status


def status_info(status) -> tuple[str, dict[str, str]] | None:
    """(reason, metadata) of the ErrorInfo in a google.rpc.Status (or rating.v1.RpcStatus)."""
    for detail in getattr(status, "details", ()):
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason, dict(info.metadata)
    return None


def call_status(error: grpc.RpcError) -> status_pb2.Status | None:
    """The rich status a failed call carries, if any (None when its trailer is missing or garbled)."""
    try:
        return grpc_status.from_call(error)
    except (AttributeError, ValueError):
        return None

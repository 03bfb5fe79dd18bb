"""Errors as gRPC statuses, with details in the standard rich error model.

Every prepaid error becomes one status code; its reason and metadata travel
as a `google.rpc.ErrorInfo` inside a `google.rpc.Status` in the
`grpc-status-details-bin` trailer (rating.v1.RpcStatus and ErrorInfo are
wire-identical copies), so clients in any language decode them with the
usual googleapis protos. `error_info` decodes them back in Python.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2

from rating.errors import RatingError
from rating.prepaid import errors
from rating.v1 import rating_pb2

DOMAIN = "rating.v1"
DETAILS_KEY = "grpc-status-details-bin"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"

CODES: dict[type[errors.PrepaidError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.IdempotencyConflict: grpc.StatusCode.ALREADY_EXISTS,
    errors.TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.InsufficientBalance: grpc.StatusCode.FAILED_PRECONDITION,
    errors.BalanceLimit: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def as_prepaid_error(exc: BaseException) -> errors.PrepaidError:
    if isinstance(exc, errors.PrepaidError):
        return exc
    if isinstance(exc, RatingError):
        return errors.InvalidArgument(str(exc))
    raise exc


def code_of(exc: errors.PrepaidError) -> grpc.StatusCode:
    for kind in type(exc).__mro__:
        if kind in CODES:
            return CODES[kind]
    return grpc.StatusCode.INTERNAL


def rpc_status(exc: errors.PrepaidError) -> rating_pb2.RpcStatus:
    code = code_of(exc)
    info = rating_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=exc.metadata)
    detail = any_pb2.Any(type_url=ERROR_INFO_TYPE, value=info.SerializeToString())
    return rating_pb2.RpcStatus(code=code.value[0], message=exc.message, details=[detail])


def trailer(code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str]) -> tuple:
    info = rating_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    detail = any_pb2.Any(type_url=ERROR_INFO_TYPE, value=info.SerializeToString())
    status = rating_pb2.RpcStatus(code=code.value[0], message=message, details=[detail])
    return ((DETAILS_KEY, status.SerializeToString()),)


async def abort(context: grpc.aio.ServicerContext, exc: errors.PrepaidError) -> None:
    code = code_of(exc)
    await context.abort(code, exc.message, trailing_metadata=trailer(code, exc.message, exc.reason,
                                                                     exc.metadata))


def set_status(context: grpc.aio.ServicerContext, exc: errors.PrepaidError) -> None:
    """The status a handler ends with when it returns (streams end this way)."""
    code = code_of(exc)
    context.set_code(code)
    context.set_details(exc.message)
    context.set_trailing_metadata(trailer(code, exc.message, exc.reason, exc.metadata))


def error_info(trailing_metadata) -> tuple[str, dict[str, str]] | None:
    """(reason, metadata) from a failed call's trailing metadata, if it has details."""
    for key, value in trailing_metadata or ():
        if key == DETAILS_KEY:
            return status_info(rating_pb2.RpcStatus.FromString(value))
    return None


def status_info(status: rating_pb2.RpcStatus) -> tuple[str, dict[str, str]] | None:
    for detail in status.details:
        if detail.type_url == ERROR_INFO_TYPE:
            info = rating_pb2.ErrorInfo.FromString(detail.value)
            return info.reason, dict(info.metadata)
    return None

"""Errors as gRPC statuses, with details in the standard rich error model.

Every prepaid error becomes one status code; its reason and metadata travel
as a `google.rpc.ErrorInfo` inside a `google.rpc.Status` in the
`grpc-status-details-bin` trailer (grpcio-status), so clients in any
language decode them with the usual googleapis protos. The reasons and their
metadata are listed in docs/api.md (`REASONS` below is the same list).
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status as grpc_status

from rating.billing.ledger import CycleOverlap, DuesConflict, NotFound, SeriesFull
from rating.billing.run import CycleIssued
from rating.errors import RatingError
from rating.prepaid import errors
from rating.v1 import rating_pb2

DOMAIN = "rating.v1"

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

S = grpc.StatusCode
# Every ErrorInfo reason the API sends, with the statuses it comes with
# (docs/api.md lists the same, with the metadata each carries).
REASONS: dict[str, tuple[grpc.StatusCode, ...]] = {
    "BAD_ARROW": (S.INVALID_ARGUMENT,),
    "BAD_SCHEMA": (S.INVALID_ARGUMENT,),
    "BAD_VALUE": (S.INVALID_ARGUMENT,),
    "UNKNOWN_METER": (S.INVALID_ARGUMENT,),
    "BAD_CONFIG": (S.INVALID_ARGUMENT,),
    "BAD_TARIFF": (S.INVALID_ARGUMENT,),
    "LIMIT_EXCEEDED": (S.INVALID_ARGUMENT, S.FAILED_PRECONDITION, S.RESOURCE_EXHAUSTED),
    "UNKNOWN_ACCOUNT": (S.NOT_FOUND,),
    "IDEMPOTENCY_CONFLICT": (S.ALREADY_EXISTS,),
    "INSUFFICIENT_BALANCE": (S.FAILED_PRECONDITION,),
    "BACKEND_UNAVAILABLE": (S.UNAVAILABLE,),
    "DRAINING": (S.UNAVAILABLE,),
    "DEADLINE_EXCEEDED": (S.DEADLINE_EXCEEDED,),
    "INTERNAL": (S.INTERNAL,),
}
# The reasons only the BillingService and the roles send (docs/api.md, BillingService and Roles);
# the billing reasons REASONS has too come with the statuses listed there.
BILLING_REASONS: dict[str, tuple[grpc.StatusCode, ...]] = {
    "CYCLE_ISSUED": (S.FAILED_PRECONDITION,),
    "CYCLE_OVERLAP": (S.FAILED_PRECONDITION,),
    "NOT_FOUND": (S.NOT_FOUND,),
    "UNKNOWN_SITE": (S.NOT_FOUND,),
    "NO_BILLING": (S.FAILED_PRECONDITION,),
    "MISSING_AREA": (S.INVALID_ARGUMENT,),
    "MISSING_COST": (S.INVALID_ARGUMENT,),
    "UNKNOWN_HEAD": (S.INVALID_ARGUMENT,),
    "UNBILLED_USAGE": (S.INVALID_ARGUMENT,),
    "PERMISSION_DENIED": (S.PERMISSION_DENIED,),
}
# The reasons only the PaymentsService adds (docs/api.md, Errors of payments): the dues
# ledger's refusals of a payment, claim, bounce or refund, each naming the id in `where`.
PAYMENTS_REASONS: dict[str, tuple[grpc.StatusCode, ...]] = {
    "CLAIM_DECIDED": (S.FAILED_PRECONDITION,),
    "REFUND_DECIDED": (S.FAILED_PRECONDITION,),
    "NOT_APPROVED": (S.FAILED_PRECONDITION,),
    "ALREADY_REVERSED": (S.FAILED_PRECONDITION,),
    "REFUNDED": (S.FAILED_PRECONDITION,),
    "TERM_NOT_ENDED": (S.FAILED_PRECONDITION,),
    "DEADLINE_PASSED": (S.FAILED_PRECONDITION,),
    "NOT_A_CHEQUE": (S.INVALID_ARGUMENT,),
    "NOT_REFUNDABLE": (S.INVALID_ARGUMENT,),
    "NOT_IN_SUSPENSE": (S.FAILED_PRECONDITION,),
}
# The reasons only the UsageService adds (docs/api.md, Errors of usage).
USAGE_REASONS: dict[str, tuple[grpc.StatusCode, ...]] = {
    "NO_USAGE_FILE": (S.FAILED_PRECONDITION,),
}
# Reasons of the ledger's input errors that say more than bad input: their own status.
REASON_CODES: dict[str, grpc.StatusCode] = {
    "PERMISSION_DENIED": S.PERMISSION_DENIED,
    "NOT_QUEUED": S.FAILED_PRECONDITION,  # a notice in no state to cancel or resend (rating.notify.control)
    **{reason: codes[0] for reason, codes in PAYMENTS_REASONS.items() if codes != (S.INVALID_ARGUMENT,)},
}
# Errors of the billing stage with a status of their own; any other RatingError is INVALID_ARGUMENT.
RATING_CODES: dict[type[RatingError], grpc.StatusCode] = {
    DuesConflict: S.ALREADY_EXISTS,
    CycleIssued: S.FAILED_PRECONDITION,
    CycleOverlap: S.FAILED_PRECONDITION,
    SeriesFull: S.FAILED_PRECONDITION,
    NotFound: S.NOT_FOUND,
}


class StatusError(errors.PrepaidError):
    """An error that names its own status (a billing error, a site the server does not bill)."""

    def __init__(self, code: grpc.StatusCode, message: str, *, reason: str, **metadata: object) -> None:
        super().__init__(message, reason=reason, **metadata)
        self.code = code


def as_prepaid_error(exc: BaseException) -> errors.PrepaidError:
    """A prepaid error as is; an input error of the engine as INVALID_ARGUMENT
    with its reason and place (file, row, column, meter) as metadata; anything
    else is a bug: INTERNAL (reason INTERNAL), the original as its cause."""
    if isinstance(exc, errors.PrepaidError):
        return exc
    if isinstance(exc, RatingError):
        code = next((RATING_CODES[k] for k in type(exc).__mro__ if k in RATING_CODES),
                    REASON_CODES.get(exc.reason))
        if code is not None:
            return StatusError(code, str(exc), reason=exc.reason, **exc.details)
        return errors.InvalidArgument.of(exc)
    internal = errors.PrepaidError(f"internal error ({type(exc).__name__}); the server's log has the "
                                   "traceback")
    internal.__cause__ = exc
    return internal


def code_of(exc: errors.PrepaidError) -> grpc.StatusCode:
    if isinstance(exc, StatusError):
        return exc.code
    for kind in type(exc).__mro__:
        if kind in CODES:
            return CODES[kind]
    return grpc.StatusCode.INTERNAL


def google_status(code: grpc.StatusCode, message: str, reason: str,
                  metadata: dict[str, str]) -> status_pb2.Status:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))
    return status_pb2.Status(code=code.value[0], message=message, details=[detail])


def status_of(exc: errors.PrepaidError) -> status_pb2.Status:
    return google_status(code_of(exc), exc.message, exc.reason, exc.metadata)


def rpc_status(exc: errors.PrepaidError) -> rating_pb2.RpcStatus:
    """The same status as the trailer's, for a stream's last message (wire-identical)."""
    return rating_pb2.RpcStatus.FromString(status_of(exc).SerializeToString())


async def abort(context: grpc.aio.ServicerContext, exc: errors.PrepaidError) -> None:
    await context.abort_with_status(grpc_status.to_status(status_of(exc)))


def set_status(context: grpc.aio.ServicerContext, exc: errors.PrepaidError) -> None:
    """The status a handler ends with when it returns (streams end this way)."""
    status = grpc_status.to_status(status_of(exc))
    context.set_code(status.code)
    context.set_details(status.details)
    context.set_trailing_metadata(status.trailing_metadata)

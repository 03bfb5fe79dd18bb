"""Errors of the prepaid service. Each maps to one gRPC status (rating.server.status).

Every error raised before an operation's ledger commit means nothing was
applied. `Unavailable(committed=True)` is the one exception: the ledger
committed the operation but the balance store could not be reached in time;
the operation will be applied by recovery, and a retry with the same id or
key returns its result.
"""

from __future__ import annotations

from rating.errors import RatingError


class PrepaidError(Exception):
    """`reason` (the class's, or given) and `metadata` become the status's
    google.rpc.ErrorInfo; the reasons are listed in docs/api.md."""

    reason = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, **metadata: object) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = {k: str(v) for k, v in metadata.items() if v is not None}


class InvalidArgument(PrepaidError):
    """Bad input: BAD_VALUE unless the engine's error says more (BAD_SCHEMA, UNKNOWN_METER, ...)."""

    reason = "BAD_VALUE"

    @classmethod
    def of(cls, exc: RatingError, **metadata: object) -> InvalidArgument:
        """The engine's error with its reason; its place (file, row, column, meter) as metadata."""
        return cls(str(exc), reason=exc.reason, **{**exc.details, **metadata})


class NotFound(PrepaidError):
    reason = "UNKNOWN_ACCOUNT"


class IdempotencyConflict(PrepaidError):
    """The same batch id or idempotency key came with a different payload."""

    reason = "IDEMPOTENCY_CONFLICT"


class TooLarge(PrepaidError):
    reason = "LIMIT_EXCEEDED"


class InsufficientBalance(PrepaidError):
    reason = "INSUFFICIENT_BALANCE"


class BalanceLimit(PrepaidError):
    """The operation would take a wallet past +-BALANCE_LIMIT_MINOR (2^53 - 1)."""

    reason = "LIMIT_EXCEEDED"


class Unavailable(PrepaidError):
    reason = "BACKEND_UNAVAILABLE"

    def __init__(self, message: str, *, committed: bool = False, reason: str | None = None,
                 **metadata: object) -> None:
        super().__init__(message, reason=reason, committed=str(committed).lower(), **metadata)
        self.committed = committed


class DeadlineExceeded(PrepaidError):
    reason = "DEADLINE_EXCEEDED"

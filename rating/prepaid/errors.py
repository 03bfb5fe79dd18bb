"""Errors of the prepaid service. Each maps to one gRPC status (rating.server.status).

Every error raised before an operation's ledger commit means nothing was
applied. `Unavailable(committed=True)` is the one exception: the ledger
committed the operation but the balance store could not be reached in time;
the operation will be applied by recovery, and a retry with the same id or
key returns its result.
"""

from __future__ import annotations


class PrepaidError(Exception):
    reason = "PREPAID_ERROR"

    def __init__(self, message: str, **metadata: object) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = {k: str(v) for k, v in metadata.items()}


class InvalidArgument(PrepaidError):
    reason = "INVALID_ARGUMENT"


class NotFound(PrepaidError):
    reason = "NOT_FOUND"


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

    def __init__(self, message: str, *, committed: bool = False, **metadata: object) -> None:
        super().__init__(message, committed=str(committed).lower(), **metadata)
        self.committed = committed


class DeadlineExceeded(PrepaidError):
    reason = "DEADLINE_EXCEEDED"

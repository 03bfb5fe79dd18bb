"""Errors of bank statement import and webhook verification (RatingError subclasses)."""

from __future__ import annotations

from rating.errors import RatingError


def _where(place: dict[str, object]) -> str | None:
    """'file x.xml, statement S-1, entry 3, field Amt' from the place's fields, in order."""
    text = ", ".join(f"{key} {value}" for key, value in place.items() if value is not None)
    return text or None


class StatementError(RatingError):
    """A bank statement file that cannot be read as it is, or does not add up.

    The place (`file`, `statement`, `entry`, `field`, `row`, `column`) is both
    the error's text and its details; nothing of the file is imported.
    """

    reason = "BAD_STATEMENT"

    def __init__(self, message: str, *, reason: str | None = None, **place: object) -> None:
        super().__init__(message, where=_where(place), reason=reason, **place)


class StatementConflict(StatementError):
    """A statement id seen before with other contents (the bank re-issued it, or a forgery)."""

    reason = "STATEMENT_CONFLICT"


class SignatureError(RatingError):
    """A webhook call refused before its body is read. `reason` is one of
    UNKNOWN_GATEWAY, MALFORMED_HEADER, BAD_SIGNATURE, STALE_TIMESTAMP,
    BODY_TOO_LARGE: safe to log (it never carries a secret or the body)."""

    reason = "BAD_SIGNATURE"

    def __init__(self, message: str, *, reason: str, gateway: str, **details: object) -> None:
        super().__init__(message, where=f"gateway {gateway}", reason=reason, gateway=gateway, **details)

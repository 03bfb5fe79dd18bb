"""Errors that name what is wrong and where; raising one changes nothing."""

from __future__ import annotations


class RatingError(ValueError):
    """Base of every error the engine raises for bad input or configuration.

    `where` names the place (file, row, field, meter) so a person can fix it.
    `reason` is a machine-readable class of the error (`BAD_VALUE`,
    `BAD_SCHEMA`, `UNKNOWN_METER`, ...; each subclass has a default) and
    `details` the place as separate fields (`file`, `row`, `column`, `meter`,
    `field`), for clients that act on them (the gRPC ErrorInfo metadata).
    """

    reason = "BAD_VALUE"

    def __init__(self, message: str, *, where: str | None = None, reason: str | None = None,
                 **details: object) -> None:
        self.message = message
        self.where = where
        if reason is not None:
            self.reason = reason
        self.details = {k: str(v) for k, v in details.items() if v is not None}
        super().__init__(f"{where}: {message}" if where else message)


class InputError(RatingError):
    """Malformed readings or registry files: missing columns, wrong types, nulls."""


class SchemaError(InputError):
    """A table's shape is wrong: a column missing, repeated or of a type not accepted."""

    reason = "BAD_SCHEMA"


class UnknownMeterError(InputError):
    """A reading names a meter the registry does not have."""

    reason = "UNKNOWN_METER"


class ConfigError(RatingError):
    """An invalid site configuration."""

    reason = "BAD_CONFIG"


class TariffError(RatingError):
    """An invalid tariff file or a reference to a tariff that does not exist."""

    reason = "BAD_TARIFF"


class AmountOverflowError(RatingError):
    """A quantity or amount left the int64 fixed-point range; never wrapped."""

    reason = "LIMIT_EXCEEDED"

"""Errors that name what is wrong and where; raising one changes nothing."""

from __future__ import annotations


class RatingError(ValueError):
    """Base of every error the engine raises for bad input or configuration.

    `where` names the place (file, row, field, meter) so a person can fix it.
    """

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class InputError(RatingError):
    """Malformed readings or registry files: missing columns, wrong types, nulls."""


class ConfigError(RatingError):
    """An invalid site configuration."""


class TariffError(RatingError):
    """An invalid tariff file or a reference to a tariff that does not exist."""


class AmountOverflowError(RatingError):
    """A quantity or amount left the int64 fixed-point range; never wrapped."""

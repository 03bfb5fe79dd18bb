"""Calendar days as numbers: days since 1970-01-01, as Arrow's date32 holds them."""

from __future__ import annotations

import datetime as dt

EPOCH = dt.date(1970, 1, 1)
EPOCH_ORDINAL = EPOCH.toordinal()


def day_number(day: dt.date) -> int:
    """Days from 1970-01-01 to `day` (negative before it)."""
    return day.toordinal() - EPOCH_ORDINAL


def date_of(number: int) -> dt.date:
    """The date `number` days after 1970-01-01."""
    return dt.date.fromordinal(number + EPOCH_ORDINAL)

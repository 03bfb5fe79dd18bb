"""The billing periods a caller asks to rate, named by month: `2025-05`, or a
range `2025-04..2025-06` (both ends included).

A month names, for each account, the billing period of its cycle that holds
the month's first day: the calendar month itself for `calendar_month`, and
for an anchor day the period that ends in that month (`anchor:15`: 15 April
to 14 May for `2025-05`), the period a bill run of that month bills
(rating.billing.cycles). At most MONTHS_MAX months at once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from rating.errors import InputError

MONTHS_MAX = 1200  # a century of monthly periods: more is a typing error, not a request
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def parse_months(text: str, *, where: str = "--period") -> tuple[dt.date, ...]:
    """The first day of every month `text` names (`2025-05`, `2025-04..2025-06`)."""
    if not isinstance(text, str):
        raise InputError(f"a period is a month such as 2025-05 or a range 2025-04..2025-06, got {text!r}",
                         where=where)
    first_text, dots, last_text = text.strip().partition("..")
    first = _month(first_text, text, where)
    last = _month(last_text, text, where) if dots else first
    if last < first:
        raise InputError(f"the range {text!r} ends before it starts; write the earlier month first",
                         where=where)
    count = (last.year - first.year) * 12 + last.month - first.month + 1
    if count > MONTHS_MAX:
        raise InputError(f"the range {text!r} holds {count:,} months; at most {MONTHS_MAX} are rated at once",
                         where=where)
    return tuple(_add_months(first, k) for k in range(count))


def months_of(periods: str | Iterable[str | dt.date], *, where: str = "periods") -> tuple[dt.date, ...]:
    """`parse_months` of a text, or of each item of a list (a month text or a
    month's first day), as one contiguous run of months."""
    if isinstance(periods, str):
        return parse_months(periods, where=where)
    if not isinstance(periods, Iterable):
        raise InputError(f"periods are a month text or a list of months, got {periods!r}", where=where)
    months: list[dt.date] = []
    for item in periods:
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime) and item.day == 1:
            months.append(item)
        else:
            months.extend(parse_months(item, where=where))  # type: ignore[arg-type]  # refuses non-text
    months = sorted(set(months))
    if not months:
        raise InputError("no period given", where=where)
    if len(months) > MONTHS_MAX:
        raise InputError(f"{len(months):,} months; at most {MONTHS_MAX} are rated at once", where=where)
    if _add_months(months[0], len(months) - 1) != months[-1]:
        raise InputError("the periods must be consecutive months (one range)", where=where)
    return tuple(months)


def _month(part: str, text: str, where: str) -> dt.date:
    match = _MONTH.fullmatch(part.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise InputError(f"a period is a month such as 2025-05 or a range 2025-04..2025-06, got {text!r}",
                         where=where)
    if not 1900 <= int(match.group(1)) < 9000:  # the reading window's years (docs/semantics.md)
        raise InputError(f"{part.strip()!r} is outside the years 1900-8999", where=where)
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def _add_months(first: dt.date, months: int) -> dt.date:
    year, month = divmod(first.year * 12 + first.month - 1 + months, 12)
    return dt.date(year, month + 1, 1)

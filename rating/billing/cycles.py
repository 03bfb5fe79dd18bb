"""Which accounts a bill run covers, and the days and months of a unit's cycle.

A run is asked for one cycle of the site (e.g. May 2025). It covers every
account whose own billing cycle (`Unit.billing_cycle`, else the site's
default) has a period ending inside the run's days, and bills that period:

- monthly, calendar (`calendar_month`): the month itself;
- monthly from an anchor day (`anchor:5`): the period ending inside the run,
  e.g. 5 April - 4 May in the May run;
- quarterly (`quarterly`, `quarterly:anchor:5`): quarters start in January,
  April, July and October on the anchor day, so a quarterly account is in
  the runs of March, June, September and December (with anchor 5: the runs
  holding 4 April, 4 July, ...), and in no other run.

Each covered account's cycle carries the run's bill and due dates. A unit
billed only from or until a day (`Unit.billed_from`, `billed_until`) whose
period holds none of its days is left out.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable

from rating.billing.documents import Cycle, Unit
from rating.errors import ConfigError
from rating.model.site import Cycle as BillingCycle

ONE_DAY = dt.timedelta(days=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 = 28 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def cycle_months(cycle: Cycle) -> int:
    """How many whole months a cycle covers (its rates are per month)."""
    months = (cycle.period_end.year - cycle.period_start.year) * 12
    months += cycle.period_end.month - cycle.period_start.month
    for count in (months, months + 1):
        if count >= 1 and add_months(cycle.period_start, count) == cycle.period_end + ONE_DAY:
            return count
    raise ConfigError(f"cycle {cycle.cycle_id} is not a whole number of months from its first day",
                      where=f"cycle {cycle.cycle_id}")


def billed_days(unit: Unit, cycle: Cycle) -> int:
    """The days of the cycle the unit is billed for (between billed_from and billed_until)."""
    first = max(cycle.period_start, unit.billed_from or cycle.period_start)
    last = min(cycle.period_end, unit.billed_until or cycle.period_end)
    return max(0, (last - first).days + 1)


def period_ending_in(run: Cycle, own: BillingCycle) -> tuple[dt.date, dt.date] | None:
    """The period of a billing cycle that ends inside the run's days, if any."""
    starts = []
    day = run.period_start + ONE_DAY
    boundary = dt.date(day.year, day.month, own.anchor_day)
    if boundary < day:
        boundary = add_months(boundary, 1)
    while boundary <= run.period_end + ONE_DAY:
        if (boundary.month - 1) % own.months == 0:
            starts.append(boundary)
        boundary = add_months(boundary, 1)
    if len(starts) > 1:
        raise ConfigError(f"the run {run.cycle_id} holds {len(starts)} periods of the cycle {own}; "
                          "run one cycle at a time", where=f"cycle {run.cycle_id}")
    if not starts:
        return None
    return add_months(starts[0], -own.months), starts[0] - ONE_DAY


def accounts_in_run(run: Cycle, units: Iterable[Unit], default: BillingCycle) -> list[tuple[Unit, Cycle]]:
    """The units a run bills, each with its own cycle (see the module text)."""
    cycles: dict[BillingCycle, Cycle | None] = {}
    covered = []
    for unit in units:
        own = unit.billing_cycle or default
        if own not in cycles:
            period = period_ending_in(run, own)
            cycles[own] = None if period is None else Cycle(run.site_id, *period, run.bill_date, run.due_date)
        cycle = cycles[own]
        if cycle is not None and billed_days(unit, cycle) > 0:
            covered.append((unit, cycle))
    return covered


def run_months(run: Cycle, units: Iterable[Unit], default: BillingCycle) -> list[dt.date]:
    """The months to rate for a run (first days, as `rate(periods=...)` takes them):
    every monthly rating period inside the covered accounts' own periods, named by
    the month it ends in, so a quarterly account's bill gets its three months."""
    months = set()
    for _, cycle in accounts_in_run(run, units, default):
        for k in range(cycle_months(cycle)):
            last = add_months(cycle.period_start, k + 1) - ONE_DAY
            months.add(dt.date(last.year, last.month, 1))
    return sorted(months) or [dt.date(run.period_start.year, run.period_start.month, 1)]

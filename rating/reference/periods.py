"""Asked periods and part periods, plainly (docs/semantics.md, "Asked periods";
docs/tariffs.md, "Part periods").

A month asked names, per account, the billing period that holds the month's
first day. A meter's active days in a period are the days it is connected
while its account is held; an account's, the days it is held.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from rating.model.registry import Account, Meter
from rating.model.site import Site
from rating.reference.calendar import Period, billing_period, local_instant
from rating.reference.records import RefAnomaly, RefReading

OUTSIDE = "outside_periods"


def asked_periods(months: Sequence[dt.date], account: Account, site: Site) -> list[Period]:
    """The account's billing period of each month asked."""
    cycle = account.cycle or site.default_cycle
    return [billing_period(month, cycle) for month in months]


def active_days(period: Period, *holders: Meter | Account) -> int:
    """Days of `period` from the latest `active_from` to the earliest
    `active_until` of the holders (a meter and its account, or an account)."""
    first, last = period.start, period.last_day
    for holder in holders:
        if holder.active_from is not None:
            first = max(first, holder.active_from)
        if holder.active_until is not None:
            last = min(last, holder.active_until)
    return max((last - first).days + 1, 0)


def outside_anomalies(readings: Sequence[RefReading], anomalies: Sequence[RefAnomaly], *,
                      meters: Mapping, accounts: Mapping, months: Sequence[dt.date], site: Site,
                      ups: int) -> list[RefAnomaly]:
    """`outside_periods` for each reading of a known meter without another
    anomaly whose instant is after its account's last asked period ends, or
    before the first one starts; at the start itself, an interval meter's
    reading (its interval ends there) but not a register's (the baseline)."""
    flagged = {a.row for a in anomalies}
    extra = []
    for row, reading in enumerate(readings):
        meter = meters.get(reading.meter_id)
        if meter is None or row in flagged:
            continue
        periods = asked_periods(months, accounts[meter.account_id], site)
        first = local_instant(periods[0].start, 0, site.zone, ups)
        end = local_instant(periods[-1].end, 0, site.zone, ups)
        early = reading.ts < first or (reading.ts == first and meter.mode == "interval")
        if early or reading.ts > end:
            extra.append(RefAnomaly(row=row, meter_id=reading.meter_id, ts=reading.ts, code=OUTSIDE,
                                    delta=None, priced=False))
    return sorted([*anomalies, *extra], key=lambda a: a.row)

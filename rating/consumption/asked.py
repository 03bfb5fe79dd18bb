"""The billing periods rate() is asked to charge (rating.model.months), per account.

With periods asked, every active meter and account is charged in each of
them, readings or not, and only in them: the carried totals are cut to the
asked periods and filled with a zero total for every (meter, period) no
reading touched. A reading whose instant lies outside its account's asked
periods is reported (`outside_periods`; a register read at the first
start is their baseline, not outside): it still moves its meter's state,
so the interval it closes is split over periods as always, but only the
parts inside the asked periods are charged (docs/semantics.md, "Asked periods").
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from rating.consumption.quantities import AccountPeriods, PeriodQuantities
from rating.consumption.timeline import local_instant_us, next_period_start, period_start_on_or_before
from rating.model.days import day_number
from rating.model.registry import Registry
from rating.model.site import Cycle, Site


class AskedPeriods:
    """Each account's asked periods as day numbers, and their span as instants."""

    def __init__(self, months: tuple[dt.date, ...], registry: Registry, site: Site):
        self.registry = registry
        anchors = registry.account_anchor_days(site)
        n, k = len(anchors), len(months)
        self.start = np.zeros((n, k), dtype=np.int64)
        self.end = np.zeros((n, k), dtype=np.int64)
        self.span_us = np.zeros((n, 2), dtype=np.int64)  # (first start, last end) local midnights
        for anchor in np.unique(anchors).tolist():
            mine = anchors == anchor
            cycle = Cycle(anchor_day=anchor)  # rating periods are monthly from the anchor day
            starts = [period_start_on_or_before(month, cycle) for month in months]
            ends = [next_period_start(start, cycle) for start in starts]
            self.start[mine] = [day_number(s) for s in starts]
            self.end[mine] = [day_number(e) for e in ends]
            self.span_us[mine] = [local_instant_us(starts[0], 0, site), local_instant_us(ends[-1], 0, site)]
        # per meter: the first instant inside (an interval meter's reading at the start is not)
        # and the last
        account = registry.account_of_meter
        interval = registry.columns(site)["is_interval"].astype(np.int64)
        self._first_us = self.span_us[account, 0] + interval
        self._end_us = self.span_us[account, 1]
        self._first_max_us = int(self._first_us.max(initial=np.iinfo(np.int64).min))
        self._end_min_us = int(self._end_us.min(initial=np.iinfo(np.int64).max))

    def meter_periods(self, width: int) -> PeriodQuantities:
        """A zero total for every (meter, asked period) with an active day."""
        account = self.registry.account_of_meter.astype(np.int64)
        k = self.start.shape[1]
        meter = np.repeat(np.arange(len(account), dtype=np.int64), k)
        start, end = self.start[account].ravel(), self.end[account].ravel()
        first = np.maximum(self.registry.meter_active_days[0][meter],
                           self.registry.account_active_days[0][account[meter]])
        last = np.minimum(self.registry.meter_active_days[1][meter],
                          self.registry.account_active_days[1][account[meter]])
        active = (np.minimum(last, end) - np.maximum(first, start)) > 0
        return PeriodQuantities(meter[active].astype(np.int32), start[active].astype(np.int32),
                                end[active].astype(np.int32), np.zeros((int(active.sum()), width), np.int64))

    def account_periods(self) -> AccountPeriods:
        """Every (account, asked period) with an active day."""
        n, k = self.start.shape
        account = np.repeat(np.arange(n, dtype=np.int64), k)
        start, end = self.start.ravel(), self.end.ravel()
        first, last = (days[account] for days in self.registry.account_active_days)
        active = (np.minimum(last, end) - np.maximum(first, start)) > 0
        return AccountPeriods(account[active], start[active].astype(np.int32), end[active].astype(np.int32))

    def holds(self, periods: PeriodQuantities) -> np.ndarray:
        """Which rows of `periods` are asked periods of their meter's account."""
        account = self.registry.account_of_meter[periods.meter_index]
        start = periods.period_start.astype(np.int64)
        return (start >= self.start[account, 0]) & (start < self.end[account, -1])

    def outside(self, meter_index: np.ndarray, ts_us: np.ndarray) -> np.ndarray | None:
        """Readings of known meters (`meter_index` >= 0) whose instant is outside
        their account's asked periods: after the last end, or before the first
        start (an interval meter's reading at the start too: its interval
        lies before it; a register read at the start is the periods' baseline).
        None when none is: a batch inside every span costs a min and a max."""
        if len(ts_us) == 0 or (ts_us.min() >= self._first_max_us and ts_us.max() <= self._end_min_us):
            return None
        known = meter_index >= 0
        meter = np.maximum(meter_index, 0)
        return known & ((ts_us < self._first_us[meter]) | (ts_us > self._end_us[meter]))

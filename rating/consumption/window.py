"""The sanity window of readings (docs/semantics.md, "The reading window").

A reading later than now plus the site's `future_tolerance_hours` is a
`future_reading`; one before the first billing period its meter's tariffs
price (for an interval meter: whose interval starts before it) is an
`ancient_reading`. Neither is priced nor moves the meter's state, so one bad
date cannot make every later reading `out_of_order`. Whatever the clock and
the tariffs say, readings outside [1900-01-01, 9000-01-01) UTC are outside
the window too: far from the limits of Python dates, so local days, billing
periods and their ends are always computable for those inside it.

The check is a few vectorised comparisons per batch, before the kernel:
rejected readings never reach a timeline, so a reading dated in the year
300000 costs what any other anomaly costs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

from rating.consumption.timeline import (
    EPOCH,
    local_instant_us,
    next_period_start,
    period_start_on_or_before,
)
from rating.model.site import Cycle, Site
from rating.model.tariff import Tariff

if TYPE_CHECKING:  # rating.consumption.kernel imports this module
    from rating.consumption.kernel import TimelineKeys

US_PER_HOUR = 3_600_000_000
WINDOW_FIRST_DAY = dt.date(1900, 1, 1)  # UTC midnight: the first instant inside
WINDOW_END_DAY = dt.date(9000, 1, 1)  # UTC midnight: the first instant outside


def utc_us(moment: dt.datetime) -> int:
    """Microseconds since the epoch of `moment` (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def now_us(now: dt.datetime | None) -> int:
    """`utc_us(now)`, of the wall clock when `now` is None."""
    return utc_us(dt.datetime.now(dt.timezone.utc) if now is None else now)


WINDOW_FIRST_US = utc_us(dt.datetime.combine(WINDOW_FIRST_DAY, dt.time()))
WINDOW_END_US = utc_us(dt.datetime.combine(WINDOW_END_DAY, dt.time()))


def first_priced_us(cycle: Cycle, tariffs: list[Tariff], site: Site) -> int:
    """Local midnight starting the first billing period of `cycle` in which every
    one of `tariffs` has a version in force (the version of a period is the
    one in force on its first day)."""
    day = max((t.versions[0].effective_from for t in tariffs), default=WINDOW_FIRST_DAY)
    day = min(max(day, WINDOW_FIRST_DAY), WINDOW_END_DAY)
    start = period_start_on_or_before(day, cycle)
    if start < day:
        start = next_period_start(start, cycle)
    return max(local_instant_us(start, 0, site), WINDOW_FIRST_US)


class ReadingWindow:
    """The window of each registry meter, built once per configuration."""

    def __init__(self, keys: TimelineKeys, interval_us: np.ndarray):
        """`keys.priced_by` names each meter's tariffs (one the registry names
        but `keys.tariffs` lacks is left to pricing to report); `interval_us`
        (0 for register meters) moves an interval meter's bound by its
        interval, whose start must be inside."""
        tariffs, site = keys.tariffs, keys.site
        first_us = np.array([
            first_priced_us(cycle, [tariffs[t] for t in named if t is not None and t in tariffs], site)
            for cycle, *named in keys.priced_keys
        ], dtype=np.int64)
        self.earliest_us = first_us[keys.priced_by] + interval_us[: len(keys.priced_by)]
        self._earliest_max_us = int(self.earliest_us.max(initial=WINDOW_FIRST_US))
        self._tolerance_us = site.future_tolerance_hours * US_PER_HOUR

    def latest_us(self, now: dt.datetime | None) -> int:
        """The latest `ts` a reading may carry: now (the wall clock when None)
        plus the site's tolerance."""
        return min(now_us(now) + self._tolerance_us, WINDOW_END_US - 1)

    def outside(self, meter_index: np.ndarray, ts_us: np.ndarray, now: dt.datetime | None
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(future, ancient) bool masks over the readings of known meters
        (`meter_index` >= 0), None for a mask with nothing set; future wins
        where both hold. A batch inside every bound costs a min and a max."""
        if len(ts_us) == 0:
            return None, None
        latest = self.latest_us(now)
        future = ancient = None
        if ts_us.max() > latest:
            future = (ts_us > latest) & (meter_index >= 0)
        if ts_us.min() < self._earliest_max_us:
            known = meter_index >= 0
            ancient = np.zeros(len(ts_us), dtype=bool)
            ancient[known] = ts_us[known] < self.earliest_us[meter_index[known]]
            if future is not None:
                ancient &= ~future
        return _none_if_empty(future), _none_if_empty(ancient)


def _none_if_empty(mask: np.ndarray | None) -> np.ndarray | None:
    return mask if mask is not None and mask.any() else None

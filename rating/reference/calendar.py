"""Billing periods and time of use in local time, and an interval split over their boundaries."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from rating.model.site import Cycle, Site
from rating.model.tariff import DayType, Tariff, TariffVersion
from rating.reference.records import EPOCH, Interval

# --------------------------------------------------------------------------- #
# Local time ("Billing periods and time of use")
# --------------------------------------------------------------------------- #


def _local_date(instant: int, zone: ZoneInfo, ups: int) -> dt.date:
    """The local calendar day of an instant."""
    seconds = instant // ups  # floor: the second the instant falls in
    return (EPOCH + dt.timedelta(seconds=seconds)).astimezone(zone).date()


def _utc_seconds(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(seconds=1)


def _wall_clock(seconds: int, zone: ZoneInfo) -> dt.datetime:
    return (EPOCH + dt.timedelta(seconds=seconds)).astimezone(zone).replace(tzinfo=None)


def local_instant(day: dt.date, minute: int, zone: ZoneInfo, ups: int) -> int:
    """The instant (in the ts unit) where local wall-clock `day minute` starts.

    A time that occurs twice starts at its first occurrence (fold=0). A time
    that does not exist (inside a daylight-saving gap) starts at the first
    instant after the gap, i.e. the transition instant.
    """
    wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    first = _utc_seconds(wall.replace(tzinfo=zone, fold=0))
    if _wall_clock(first, zone) == wall:
        return first * ups  # exists; fold=0 is the first of two occurrences
    # In a gap: fold=0 reads it with the offset before the transition (an instant
    # after the gap), fold=1 with the offset after it (an instant before the gap).
    # The transition is the first whole second whose wall clock is >= `wall`;
    # zone transitions fall on whole seconds.
    before = _utc_seconds(wall.replace(tzinfo=zone, fold=1))
    lo, hi = before, first
    if not _wall_clock(lo, zone) < wall <= _wall_clock(hi, zone):
        raise AssertionError(f"cannot place local time {wall} in {zone}")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall_clock(mid, zone) >= wall:
            hi = mid
        else:
            lo = mid
    return hi * ups


def _day_type(day: dt.date, site: Site) -> DayType:
    """Day types: holiday (listed in the site) wins over weekend (Sat, Sun)."""
    if day in site.holidays:
        return "holiday"
    if day.weekday() >= 5:
        return "weekend"
    return "weekday"


@dataclass(frozen=True, order=True)
class Period:
    """A billing period [start, end) of local days; `end` is the next start."""

    start: dt.date
    end: dt.date

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def _add_month(year: int, month: int, step: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + step
    return index // 12, index % 12 + 1


def billing_period(day: dt.date, cycle: Cycle) -> Period:
    """A billing period runs from local midnight of the anchor day (1-28) to the
    same day of the next month; anchor 1 is the calendar month."""
    anchor = cycle.anchor_day
    if day.day >= anchor:
        year, month = day.year, day.month
    else:
        year, month = _add_month(day.year, day.month, -1)
    next_year, next_month = _add_month(year, month, 1)
    return Period(dt.date(year, month, anchor), dt.date(next_year, next_month, anchor))


def version_in_force(tariff: Tariff, period: Period) -> TariffVersion:
    """The version in force on the period's first local day."""
    return tariff.version_on(period.start)


# --------------------------------------------------------------------------- #
# Splitting an interval over boundaries
# --------------------------------------------------------------------------- #

# A segment's label: its billing period and TOU period index.
_Label = tuple[Period, int]


def _day_boundaries(
    day: dt.date, *, tariff: Tariff, cycle: Cycle, site: Site, zone: ZoneInfo, ups: int
) -> list[tuple[int, _Label]]:
    """The timeline points of one local day, in wall-clock order: its midnight
    and the starts of the TOU spans of the tariff version in force in its
    billing period. (Midnight is listed every day; an extra boundary where
    nothing changes does not change any part, the rounding being cumulative.)"""
    period = billing_period(day, cycle)
    version = version_in_force(tariff, period)
    midnight = local_instant(day, 0, zone, ups)
    if version.tou is None:
        return [(midnight, (period, 0))]
    day_type = _day_type(day, site)
    points = [(midnight, (period, version.tou.period_at(day.month, day_type, 0)))]
    for start, _end, index in sorted(version.tou.day_spans(day.month, day_type)):
        points.append((local_instant(day, start, zone, ups), (period, index)))
    return points


def _timeline(
    t0: int, t1: int, *, tariff: Tariff, cycle: Cycle, site: Site, zone: ZoneInfo, ups: int
) -> tuple[list[int], list[_Label]]:
    """The meter's timeline around (t0, t1]: sorted distinct instants and the
    label of the segment starting at each. Days are walked in local time; only
    days overlapping [t0, t1) are looked at (so no tariff version is needed for
    a day the interval does not reach)."""
    instants: list[int] = []
    labels: list[_Label] = []
    day = _local_date(t0, zone, ups) - dt.timedelta(days=1)
    last = _local_date(t1, zone, ups) + dt.timedelta(days=1)
    while day <= last:
        next_day = day + dt.timedelta(days=1)
        if local_instant(next_day, 0, zone, ups) > t0 and local_instant(day, 0, zone, ups) < t1:
            for instant, label in _day_boundaries(
                day, tariff=tariff, cycle=cycle, site=site, zone=zone, ups=ups
            ):
                if instants and instant < instants[-1]:
                    raise AssertionError("local wall-clock to instant must be monotonic")
                if instants and instant == instants[-1]:
                    # several local times on one instant (a DST gap): the
                    # segment after it belongs to the last of them
                    labels[-1] = label
                else:
                    instants.append(instant)
                    labels.append(label)
        day = next_day
    return instants, labels


def _split(q: int, t0: int, t1: int, cuts: Sequence[int]) -> list[int]:
    """Pro rata by time with cumulative floor rounding over `t0 < cuts... < t1`:
    `cum(b) = floor(q × (b − t0) / D)`, part i = cum(b_i+1) − cum(b_i)."""
    span = t1 - t0

    def cum(b: int) -> int:
        return q * (b - t0) // span  # exact integer floor; cum(t0) = 0, cum(t1) = q

    points = [t0, *cuts, t1]
    return [cum(points[i + 1]) - cum(points[i]) for i in range(len(points) - 1)]


def segments(
    interval: Interval, *, tariff: Tariff, cycle: Cycle, site: Site, zone: ZoneInfo, ups: int
) -> list[tuple[_Label, int]]:
    """The parts of an accepted interval, each with the label of its segment.
    A segment (b_i, b_i+1] belongs to the periods in force from b_i on, so a
    reading at exactly a boundary belongs to the segment that ends there."""
    t0, t1 = interval.t0, interval.t1
    instants, labels = _timeline(t0, t1, tariff=tariff, cycle=cycle, site=site, zone=zone, ups=ups)
    cuts = [b for b in instants if t0 < b < t1]
    parts = _split(interval.q, t0, t1, cuts)
    starts = [t0, *cuts]
    result = []
    for start, part in zip(starts, parts, strict=True):
        label = labels[bisect.bisect_right(instants, start) - 1]  # last point <= start
        result.append((label, part))
    return result



"""Timelines: the instants where a meter's billing period or TOU period changes.

A timeline belongs to a (billing cycle, tariff) pair and covers a time range.
Its boundaries b_0 < b_1 < ... < b_S are microseconds since the epoch; segment
j is the interval (b_j, b_j+1] and carries the bucket slot
`period_index × tou_count + tou_index` the kernel adds consumption to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from rating.model.site import Cycle, Site
from rating.model.tariff import DayType, Tariff

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
US_PER_SECOND = 1_000_000
_ONE_US = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Timeline:
    bounds_us: np.ndarray  # int64 (S + 1,)
    slots: np.ndarray  # int32 (S,): bucket slot of each segment
    period_starts: list[dt.date]  # local first day of each period
    period_ends: list[dt.date]  # local first day of the next period
    tou_count: int

    @property
    def bucket_count(self) -> int:
        return len(self.period_starts) * self.tou_count


def period_start_on_or_before(day: dt.date, cycle: Cycle) -> dt.date:
    """First day of the billing period that contains `day`."""
    if day.day >= cycle.anchor_day:
        return day.replace(day=cycle.anchor_day)
    previous = day.replace(day=1) - dt.timedelta(days=1)
    return previous.replace(day=cycle.anchor_day)


def next_period_start(start: dt.date, cycle: Cycle) -> dt.date:
    following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following.replace(day=cycle.anchor_day)


def day_type(day: dt.date, site: Site) -> DayType:
    if day in site.holidays:
        return "holiday"
    return "weekend" if day.weekday() >= 5 else "weekday"


def local_instant_us(day: dt.date, minute: int, site: Site) -> int:
    """Microseconds since the epoch of local wall-clock `minute` of `day`.

    A local time that does not exist (a daylight-saving gap) maps to the first
    instant after the gap; one that occurs twice maps to its first occurrence.
    """
    zone = site.zone
    naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    first = naive.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(dt.timezone.utc)
    if utc.astimezone(zone).replace(tzinfo=None) != naive:  # inside a gap
        utc = _gap_end(naive, site)
    return (utc - EPOCH) // _ONE_US


def _gap_end(naive: dt.datetime, site: Site) -> dt.datetime:
    """The transition instant of the daylight-saving gap that swallows `naive`."""
    zone = site.zone
    late = naive.replace(tzinfo=zone, fold=0).astimezone(dt.timezone.utc)
    early = naive.replace(tzinfo=zone, fold=1).astimezone(dt.timezone.utc)
    low, high = min(early, late), max(early, late)
    offset_low = low.astimezone(zone).utcoffset()
    while high - low > _ONE_US:  # bisect for the first instant with the new offset
        middle = low + (high - low) // 2
        if middle.astimezone(zone).utcoffset() == offset_low:
            low = middle
        else:
            high = middle
    return high


def local_date_of_us(instant_us: int, site: Site) -> dt.date:
    return (EPOCH + dt.timedelta(microseconds=int(instant_us))).astimezone(site.zone).date()


def build_timeline(cycle: Cycle, tariff: Tariff, site: Site, start_us: int, end_us: int) -> Timeline:
    """Timeline of whole billing periods covering [start_us, end_us]."""
    tou_count = tariff.tou_count
    first = period_start_on_or_before(local_date_of_us(start_us, site), cycle)
    last_day = local_date_of_us(end_us, site)
    bounds: list[int] = []
    slots: list[int] = []
    starts: list[dt.date] = []
    ends: list[dt.date] = []
    period_start = first
    while period_start <= last_day or not starts:
        period_end = next_period_start(period_start, cycle)
        base = len(starts) * tou_count
        version = tariff.version_on(period_start)
        day = period_start
        while day < period_end:
            spans = (
                version.tou.day_spans(day.month, day_type(day, site))
                if version.tou
                else ((0, 24 * 60, 0),)
            )
            for start_minute, _end_minute, tou_index in spans:
                slot = base + tou_index
                if slots and slots[-1] == slot:
                    continue  # same bucket continues across midnight
                bounds.append(local_instant_us(day, start_minute, site))
                slots.append(slot)
            day += dt.timedelta(days=1)
        starts.append(period_start)
        ends.append(period_end)
        period_start = period_end
    bounds.append(local_instant_us(period_start, 0, site))
    return Timeline(
        bounds_us=np.array(bounds, dtype=np.int64),
        slots=np.array(slots, dtype=np.int32),
        period_starts=starts,
        period_ends=ends,
        tou_count=tou_count,
    )

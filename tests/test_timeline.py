import datetime as dt
from decimal import Decimal as D

import pytest

from rating.consumption.timeline import (
    build_timeline,
    day_type,
    local_instant_us,
    next_period_start,
    period_start_on_or_before,
)
from rating.model.site import Cycle, Site
from rating.model.tariff import Slab, SlabSet, Tariff, TariffVersion, TimeOfUse, TouPeriod, TouRule

ALL_DAYS = frozenset({"weekday", "weekend", "holiday"})


def us(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * 1_000_000


def flat_tariff() -> Tariff:
    energy = SlabSet("graduated", "period", (Slab(None, D(1)),))
    return Tariff("F", "flat", (TariffVersion("F", dt.date(2000, 1, 1), energy=energy),))


def peak_tariff(peak_start_minute: int = 18 * 60) -> Tariff:
    tou = TimeOfUse(
        "price",
        (TouPeriod("off", D(2)), TouPeriod("peak", D(9))),
        (TouRule(frozenset(range(1, 13)), ALL_DAYS,
                 ((0, peak_start_minute, 0), (peak_start_minute, 22 * 60, 1), (22 * 60, 1440, 0))),),
    )
    return Tariff("P", "peak", (TariffVersion("P", dt.date(2000, 1, 1), tou=tou),))


def test_anchor_day_periods_run_from_anchor_to_anchor():
    cycle = Cycle(15)
    assert period_start_on_or_before(dt.date(2026, 11, 14), cycle) == dt.date(2026, 10, 15)
    assert period_start_on_or_before(dt.date(2026, 11, 15), cycle) == dt.date(2026, 11, 15)
    assert next_period_start(dt.date(2026, 12, 15), cycle) == dt.date(2027, 1, 15)
    assert period_start_on_or_before(dt.date(2026, 1, 3), cycle) == dt.date(2025, 12, 15)


def test_holiday_wins_over_weekend_and_weekday():
    site = Site(holidays=frozenset({dt.date(2026, 11, 8), dt.date(2026, 11, 10)}))
    assert day_type(dt.date(2026, 11, 8), site) == "holiday"  # a Sunday
    assert day_type(dt.date(2026, 11, 10), site) == "holiday"  # a Tuesday
    assert day_type(dt.date(2026, 11, 7), site) == "weekend"
    assert day_type(dt.date(2026, 11, 9), site) == "weekday"


def test_local_midnight_in_a_zone_without_dst():
    site = Site(time_zone="Asia/Kolkata")
    assert local_instant_us(dt.date(2026, 11, 1), 0, site) == us("2026-10-31T18:30:00+00:00")


def test_nonexistent_local_time_starts_at_the_end_of_the_gap():
    site = Site(time_zone="America/New_York")
    # 2026-03-08 02:30 does not exist: clocks jump from 02:00 EST to 03:00 EDT (07:00 UTC)
    assert local_instant_us(dt.date(2026, 3, 8), 150, site) == us("2026-03-08T07:00:00+00:00")
    assert local_instant_us(dt.date(2026, 3, 8), 180, site) == us("2026-03-08T07:00:00+00:00")


def test_repeated_local_time_starts_at_its_first_occurrence():
    site = Site(time_zone="America/New_York")
    # 2026-11-01 01:30 happens twice; the first time is EDT (05:30 UTC)
    assert local_instant_us(dt.date(2026, 11, 1), 90, site) == us("2026-11-01T05:30:00+00:00")


def test_calendar_month_timeline_covers_the_range_with_whole_periods():
    site = Site(time_zone="Asia/Kolkata")
    timeline = build_timeline(Cycle(1), flat_tariff(), site,
                              us("2026-11-03T00:00:00+05:30"), us("2026-12-02T00:00:00+05:30"))
    assert timeline.period_starts == [dt.date(2026, 11, 1), dt.date(2026, 12, 1)]
    assert timeline.period_ends == [dt.date(2026, 12, 1), dt.date(2027, 1, 1)]
    assert timeline.bounds_us.tolist() == [
        us("2026-11-01T00:00:00+05:30"), us("2026-12-01T00:00:00+05:30"), us("2027-01-01T00:00:00+05:30")
    ]
    assert timeline.slots.tolist() == [0, 1]


def test_tou_timeline_segments_follow_local_hours_and_merge_across_midnight():
    site = Site(time_zone="Asia/Kolkata")
    timeline = build_timeline(Cycle(1), peak_tariff(), site,
                              us("2026-11-01T00:00:00+05:30"), us("2026-11-01T12:00:00+05:30"))
    day_one = timeline.bounds_us[:4].tolist()
    assert day_one == [
        us("2026-11-01T00:00:00+05:30"), us("2026-11-01T18:00:00+05:30"),
        us("2026-11-01T22:00:00+05:30"), us("2026-11-02T18:00:00+05:30"),
    ]
    assert timeline.slots[:4].tolist() == [0, 1, 0, 1]
    assert len(timeline.bounds_us) == 30 * 2 + 1 + 1  # off/peak pairs, month start, month end


def test_tou_boundaries_follow_local_time_across_a_dst_change():
    site = Site(time_zone="Europe/London")
    timeline = build_timeline(Cycle(1), peak_tariff(), site,
                              us("2026-03-28T00:00:00+00:00"), us("2026-03-30T00:00:00+01:00"))
    bounds = timeline.bounds_us.tolist()
    # 18:00 local is 18:00 UTC before the change (GMT) and 17:00 UTC after it (BST)
    assert us("2026-03-28T18:00:00+00:00") in bounds
    assert us("2026-03-29T17:00:00+00:00") in bounds
    start = local_instant_us(dt.date(2026, 3, 29), 0, site)
    end = local_instant_us(dt.date(2026, 3, 30), 0, site)
    assert end - start == 23 * 3600 * 1_000_000


@pytest.mark.parametrize("anchor", [1, 15, 28])
def test_bounds_increase_and_every_period_has_segments(anchor):
    site = Site(time_zone="America/New_York")
    timeline = build_timeline(Cycle(anchor), peak_tariff(), site,
                              us("2026-01-01T00:00:00+00:00"), us("2026-12-31T00:00:00+00:00"))
    bounds = timeline.bounds_us
    assert (bounds[1:] >= bounds[:-1]).all()
    assert len(timeline.slots) == len(bounds) - 1
    assert set((timeline.slots // timeline.tou_count).tolist()) == set(range(len(timeline.period_starts)))

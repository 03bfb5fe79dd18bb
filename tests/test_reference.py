"""Hand-computed cases for every rule of docs/semantics.md, against rating.reference.charges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.errors import InputError, TariffError
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Cycle, Site
from rating.model.tariff import (
    Slab,
    SlabSet,
    Tariff,
    TariffVersion,
    Tax,
    TimeOfUse,
    TouPeriod,
    TouRule,
)
from rating.reference.calendar import _split, local_instant
from rating.reference.charges import RefAnomaly, RefLine, RefReading, reference_rate
from rating.reference.period_charge import _largest_remainder

UTC = Site()
ALL_DAYS = frozenset({"weekday", "weekend", "holiday"})
ALL_MONTHS = frozenset(range(1, 13))
JAN1 = dt.date(2024, 1, 1)


# --------------------------------------------------------------------------- helpers


def at(text: str, unit: str = "s", tz: str = "UTC") -> int:
    """Epoch count of a local wall-clock time (must be unambiguous) in `unit`."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    seconds = int(moment.timestamp())
    return seconds * {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]


def slabs(*spec, mode="graduated", basis="period") -> SlabSet:
    """slabs((10, "1.5"), (110, "1.0"), (None, "0.5")); a third item is the fee."""
    return SlabSet(
        mode,
        basis,
        tuple(
            Slab(None if s[0] is None else D(str(s[0])), D(s[1]), D(s[2]) if len(s) > 2 else D(0))
            for s in spec
        ),
    )


def flat(price: str = "1") -> SlabSet:
    return slabs((None, price))


def tariff(tariff_id: str = "T", *versions: TariffVersion, **kwargs) -> Tariff:
    if not versions:
        versions = (TariffVersion(tariff_id=tariff_id, effective_from=dt.date(2023, 1, 1), **kwargs),)
    return Tariff(tariff_id, tariff_id, versions)


def registry(*meters: Meter, accounts: tuple[Account, ...] = ()) -> Registry:
    known = {a.account_id for a in accounts}
    extra = [Account(m.account_id) for m in meters if m.account_id not in known]
    unique = list({a.account_id: a for a in extra}.values())
    return Registry(list(meters), list(accounts) + unique)


def meter(meter_id="m1", account_id="A", tariff_id="T", **kwargs) -> Meter:
    return Meter(meter_id=meter_id, account_id=account_id, tariff_id=tariff_id, **kwargs)


def reads(*spec, meter_id="m1", unit="s", tz="UTC") -> list[RefReading]:
    """reads(("2024-01-01T00:00", "0"), ...); an int time is taken as is."""
    out = []
    for when, value in spec:
        ts = when if isinstance(when, int) else at(when, unit, tz)
        out.append(RefReading(meter_id, ts, None if value is None else D(value)))
    return out


def rate(readings, tariffs, reg, site=UTC, unit="s"):
    if isinstance(tariffs, Tariff):
        tariffs = {tariffs.id: tariffs}
    return reference_rate(readings, ts_unit=unit, site=site, registry=reg, tariffs=tariffs)


def energy(lines):
    return [(ln.tou_period, ln.slab, ln.quantity, ln.unit_price, ln.amount) for ln in lines
            if ln.component == "energy"]


def amounts(lines):
    return [(ln.component, ln.amount) for ln in lines]


def codes(anomalies):
    return [(a.row, a.code, a.delta, a.priced) for a in anomalies]


def two_reads(q: str, start="2024-01-10T00:00", end="2024-01-11T00:00"):
    return reads((start, "0"), (end, q))


# --------------------------------------------------------------------------- slabs

KNOWN_WIDTHS = ((10, "1.5"), (110, "1.0"), (None, "0.5"))  # widths 10, 100, then the rest


def test_graduated_known_case_111_units():
    t = tariff(energy=slabs(*KNOWN_WIDTHS))
    lines, anomalies = rate(two_reads("111"), t, registry(meter()))
    assert anomalies == []
    assert energy(lines) == [
        (None, 1, D("10"), D("1.5"), D("15.00")),
        (None, 2, D("100"), D("1.0"), D("100.00")),
        (None, 3, D("1"), D("0.5"), D("0.50")),
    ]
    assert sum(ln.amount for ln in lines) == D("115.50")
    assert lines[0].period_start == JAN1 and lines[0].period_end == dt.date(2024, 1, 31)


def test_volume_known_case_111_units():
    t = tariff(energy=slabs(*KNOWN_WIDTHS, mode="volume"))
    lines, _ = rate(two_reads("111"), t, registry(meter()))
    assert energy(lines) == [(None, 3, D("111"), D("0.5"), D("55.50"))]


@pytest.mark.parametrize(
    "q, expected",
    [
        ("25", [(1, D("10"), D("50.00")), (2, D("10"), D("100.00")), (3, D("5"), D("75.00"))]),
        ("10", [(1, D("10"), D("50.00"))]),  # 10 is in slab 1, slabs 2-3 hold 0: no lines
        ("10.001", [(1, D("10"), D("50.00")), (2, D("0.001"), D("0.01"))]),
    ],
)
def test_graduated_three_slabs(q, expected):
    t = tariff(energy=slabs((10, "5"), (20, "10"), (None, "15")))
    lines, _ = rate(two_reads(q), t, registry(meter()))
    assert [(s, qty, amt) for _, s, qty, _, amt in energy(lines)] == expected
    total = {"25": D("225.00"), "10": D("50.00"), "10.001": D("50.01")}[q]
    assert sum(ln.amount for ln in lines) == total


def test_volume_bound_belongs_to_its_slab():
    t = tariff(energy=slabs((10, "5"), (20, "10"), (None, "15"), mode="volume"))
    assert energy(rate(two_reads("20"), t, registry(meter()))[0]) == [
        (None, 2, D("20"), D("10"), D("200.00"))
    ]
    assert energy(rate(two_reads("20.001"), t, registry(meter()))[0]) == [
        (None, 3, D("20.001"), D("15"), D("300.02"))  # 300.015 -> half_even 300.02
    ]


def test_slab_fee_of_the_slab_reached_graduated_and_volume():
    spec = ((10, "1", "5"), (20, "2", "7"), (None, "3", "9"))
    for mode in ("graduated", "volume"):
        t = tariff(energy=slabs(*spec, mode=mode))
        lines, _ = rate(two_reads("15"), t, registry(meter()))
        fees = [(ln.slab, ln.quantity, ln.unit_price, ln.amount) for ln in lines
                if ln.component == "slab_fee"]
        assert fees == [(2, None, None, D("7.00"))]
    # Q = 0 (a touched period without consumption) is in the first slab
    lines, _ = rate(two_reads("0"), tariff(energy=slabs(*spec)), registry(meter()))
    assert amounts(lines) == [("slab_fee", D("5.00"))]


def test_per_day_bounds_scale_with_days_of_the_billing_period():
    # 1 unit per day at 1, then 2: January has 31 days, so the bound is 31
    t = tariff(energy=slabs((1, "1"), (None, "2"), basis="per_day"))
    lines, _ = rate(two_reads("40"), t, registry(meter()))
    assert energy(lines) == [(None, 1, D("31"), D("1"), D("31.00")),
                             (None, 2, D("9"), D("2"), D("18.00"))]
    # February 2024 has 29 days
    lines, _ = rate(two_reads("40", "2024-02-10T00:00", "2024-02-11T00:00"), t, registry(meter()))
    assert energy(lines)[0][2] == D("29")


# --------------------------------------------------------------------------- anomalies


def test_every_anomaly_code():
    m_reg = meter("r", register_digits=4, max_rate_per_hour=D("100"))
    m_int = meter("i", mode="interval", interval_minutes=60)
    readings = [
        RefReading("ghost", at("2024-01-10T00:00"), D("1")),   # 0 unknown_meter
        RefReading("r", at("2024-01-10T00:00"), None),         # 1 null_value
        RefReading("r", at("2024-01-10T00:00"), D("10000")),   # 2 out_of_range (>= 10^4)
        RefReading("r", at("2024-01-10T00:00"), D("-1")),      # 3 out_of_range (< 0)
        RefReading("i", at("2024-01-10T01:00"), D("-0.001")),  # 4 negative_quantity
        RefReading("r", at("2024-01-10T00:00"), D("9990")),    # 5 baseline
        RefReading("r", at("2024-01-10T00:00"), D("9990")),    # 6 duplicate
        RefReading("r", at("2024-01-10T00:00"), D("9991")),    # 7 conflicting_duplicate
        RefReading("r", at("2024-01-09T23:00"), D("9991")),    # 8 out_of_order
        RefReading("r", at("2024-01-10T01:00"), D("5")),       # 9 rollover: 15 consumed
        RefReading("r", at("2024-01-10T02:00"), D("4")),       # 10 negative_delta -1
        RefReading("r", at("2024-01-10T03:00"), D("306")),     # 11 spike: 301 in 2 h > 200
        RefReading("r", at("2024-01-10T03:00"), D("205")),     # 12 accepted: 200 in 2 h
        RefReading("i", at("2024-01-10T01:00"), D("2")),       # 13 accepted
        RefReading("i", at("2024-01-10T01:00"), D("2")),       # 14 duplicate (interval)
        RefReading("i", at("2024-01-10T00:00"), D("2")),       # 15 out_of_order (interval)
    ]
    lines, anomalies = rate(readings, tariff(energy=flat()), registry(m_reg, m_int))
    assert codes(anomalies) == [
        (0, "unknown_meter", None, False),
        (1, "null_value", None, False),
        (2, "out_of_range", None, False),
        (3, "out_of_range", None, False),
        (4, "negative_quantity", None, False),
        (6, "duplicate", None, False),
        (7, "conflicting_duplicate", None, False),
        (8, "out_of_order", None, False),
        (9, "rollover", D("15"), True),
        (10, "negative_delta", D("-1"), False),
        (11, "spike", D("301"), False),
        (14, "duplicate", None, False),
        (15, "out_of_order", None, False),
    ]
    assert anomalies[0] == RefAnomaly(0, "ghost", at("2024-01-10T00:00"), "unknown_meter", None, False)
    by_meter = {ln.meter_id: ln.quantity for ln in lines}
    assert by_meter == {"r": D("215"), "i": D("2")}  # 15 (rollover) + 200; the interval's 2


def test_register_without_digits_never_rolls_over_and_has_no_range():
    m = meter(register_digits=0)
    readings = reads(("2024-01-10T00:00", "-5"), ("2024-01-10T01:00", "-7"),
                     ("2024-01-10T02:00", "-2"))
    lines, anomalies = rate(readings, tariff(energy=flat()), registry(m))
    assert codes(anomalies) == [(1, "negative_delta", D("-2"), False)]
    assert energy(lines) == [(None, 1, D("3"), D("1"), D("3.00"))]


def test_rollover_threshold_is_strict_half():
    m = meter(register_digits=4, multiplier=2)
    t = tariff(energy=flat())
    # d = 4000 - 9000 = -5000: d + 10^4 = 5000 is not < 5000 -> negative_delta (× multiplier)
    _, anomalies = rate(reads(("2024-01-10T00:00", "9000"), ("2024-01-10T01:00", "4000")),
                        t, registry(m))
    assert codes(anomalies) == [(1, "negative_delta", D("-10000"), False)]
    # d = -4999.999: d + 10^4 = 5000.001 is not < 5000 -> negative_delta
    _, anomalies = rate(reads(("2024-01-10T00:00", "9000"), ("2024-01-10T01:00", "4000.001")),
                        t, registry(m))
    assert codes(anomalies) == [(1, "negative_delta", D("-9999.998"), False)]
    # d = -5000.001: d + 10^4 = 4999.999 < 5000 -> rollover of 4999.999 × 2
    lines, anomalies = rate(reads(("2024-01-10T00:00", "9000"), ("2024-01-10T01:00", "3999.999")),
                            t, registry(m))
    assert codes(anomalies) == [(1, "rollover", D("9999.998"), True)]
    assert energy(lines) == [(None, 1, D("9999.998"), D("1"), D("10000.00"))]


def test_rejected_readings_do_not_move_state():
    t = tariff(energy=flat())
    readings = reads(("2024-01-10T00:00", "10"), ("2024-01-10T01:00", "5"),  # negative_delta
                     ("2024-01-10T02:00", "12"))
    lines, anomalies = rate(readings, t, registry(meter()))
    assert codes(anomalies) == [(1, "negative_delta", D("-5"), False)]
    assert energy(lines) == [(None, 1, D("2"), D("1"), D("2.00"))]  # 12 - 10


def test_baseline_alone_prices_nothing():
    lines, anomalies = rate(reads(("2024-01-10T00:00", "10")), tariff(energy=flat(), fixed_charge=D(5)),
                            registry(meter()))
    assert lines == [] and anomalies == []


def test_multiplier():
    t = tariff(energy=flat("2"))
    lines, _ = rate(two_reads("2.5"), t, registry(meter(multiplier=40)))
    assert energy(lines) == [(None, 1, D("100"), D("2"), D("200.00"))]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_spike_exact_bound_in_every_unit(unit):
    m = meter(max_rate_per_hour=D("10"), multiplier=2)  # 10 per hour after the multiplier
    t = tariff(energy=flat())
    start = at("2024-01-10T00:00", unit)
    hour = 3600 * {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    # 30 min: 5 allowed. 2.5 × 2 = 5 is not a spike; 2.501 × 2 = 5.002 is.
    ok = [RefReading("m1", start, D("0")), RefReading("m1", start + hour // 2, D("2.5"))]
    lines, anomalies = rate(ok, t, registry(m), unit=unit)
    assert anomalies == [] and energy(lines)[0][2] == D("5")
    bad = [RefReading("m1", start, D("0")), RefReading("m1", start + hour // 2, D("2.501")),
           RefReading("m1", start + hour, D("5"))]
    lines, anomalies = rate(bad, t, registry(m), unit=unit)
    assert codes(anomalies) == [(1, "spike", D("5.002"), False)]
    assert energy(lines)[0][2] == D("10")  # the next reading prices from the baseline


def test_spike_of_an_interval_meter_uses_its_interval():
    m = meter(mode="interval", interval_minutes=15, max_rate_per_hour=D("4"))
    readings = reads(("2024-01-10T00:15", "1"), ("2024-01-10T00:30", "1.001"))
    lines, anomalies = rate(readings, tariff(energy=flat()), registry(m))
    assert codes(anomalies) == [(1, "spike", D("1.001"), False)]
    assert energy(lines)[0][2] == D("1")


def test_zero_rate_limit_rejects_any_consumption():
    m = meter(max_rate_per_hour=D("0"))
    readings = reads(("2024-01-10T00:00", "1"), ("2024-01-10T01:00", "1"),
                     ("2024-01-10T02:00", "1.001"))
    lines, anomalies = rate(readings, tariff(energy=flat(), fixed_charge=D(1)), registry(m))
    assert codes(anomalies) == [(2, "spike", D("0.001"), False)]
    assert amounts(lines) == [("fixed_charge", D("1.00"))]  # touched by the zero interval


def test_rollover_that_is_a_spike_is_reported_as_spike_only():
    m = meter(register_digits=3, max_rate_per_hour=D("10"))
    readings = reads(("2024-01-10T00:00", "990"), ("2024-01-10T01:00", "15"))  # 25 in an hour
    lines, anomalies = rate(readings, tariff(energy=flat()), registry(m))
    assert codes(anomalies) == [(1, "spike", D("25"), False)]
    assert lines == []


# --------------------------------------------------------------------------- splitting


def test_split_cumulative_floor():
    assert _split(10, 0, 3, [1, 2]) == [3, 3, 4]
    assert _split(7, 0, 10, [1, 2, 9]) == [0, 1, 5, 1]
    assert _split(5, 100, 200, []) == [5]
    assert _split(0, 0, 10, [5]) == [0, 0]


def test_split_over_a_month_boundary():
    # 36 h from Jan 31 00:00 to Feb 1 12:00: January gets floor(10000 × 24/36) = 6666 units
    t = tariff(energy=flat())
    lines, _ = rate(two_reads("10", "2024-01-31T00:00", "2024-02-01T12:00"), t, registry(meter()))
    assert [(ln.period_start, ln.period_end, ln.quantity, ln.amount) for ln in lines] == [
        (dt.date(2024, 1, 1), dt.date(2024, 1, 31), D("6.666"), D("6.67")),
        (dt.date(2024, 2, 1), dt.date(2024, 2, 29), D("3.334"), D("3.33")),
    ]


def test_reading_at_a_boundary_belongs_to_the_segment_ending_there():
    t = tariff(energy=flat(), fixed_charge=D(1))
    lines, _ = rate(two_reads("10", "2024-01-31T00:00", "2024-02-01T00:00"), t, registry(meter()))
    assert {ln.period_start for ln in lines} == {JAN1}
    # the next interval starts at the boundary: wholly February
    readings = reads(("2024-01-31T00:00", "0"), ("2024-02-01T00:00", "10"),
                     ("2024-02-02T00:00", "11"))
    lines, _ = rate(readings, t, registry(meter()))
    assert [(ln.period_start, ln.component, ln.quantity) for ln in lines] == [
        (JAN1, "energy", D("10")), (JAN1, "fixed_charge", None),
        (dt.date(2024, 2, 1), "energy", D("1")), (dt.date(2024, 2, 1), "fixed_charge", None),
    ]


def test_long_gap_touches_every_period_even_with_a_zero_part():
    # 0.002 (2 units) over (Jan 31 00:00, Apr 1 12:00]
    t = tariff(energy=flat(), fixed_charge=D(1))
    lines, _ = rate(two_reads("0.002", "2024-01-31T00:00", "2024-04-01T12:00"), t, registry(meter()))
    fixed = [ln.period_start.month for ln in lines if ln.component == "fixed_charge"]
    assert fixed == [1, 2, 3, 4]
    got = {ln.period_start.month: ln.quantity for ln in lines if ln.component == "energy"}
    # D = 61.5 days = 123 half days; cum at Feb 1 = floor(2×2/123) = 0, Mar 1 = floor(2×60/123)
    # = 0, Apr 1 = floor(2×122/123) = 1, end = 2: only March and April hold energy
    assert got == {3: D("0.001"), 4: D("0.001")}


def test_interval_meter_interval_ends_at_ts_and_is_split():
    m = meter(mode="interval", interval_minutes=30)
    t = tariff(energy=flat())
    # (Jan 31 23:45, Feb 1 00:15]: 1.001 split at midnight, floor(1001 / 2) = 500
    lines, _ = rate(reads(("2024-02-01T00:15", "1.001")), t, registry(m))
    assert [(ln.period_start.month, ln.quantity) for ln in lines] == [(1, D("0.5")), (2, D("0.501"))]


def test_split_over_a_tou_boundary_with_exact_parts():
    t = tariff(tou=tou_price())
    # (17:00, 20:00] with 0.007: off-peak gets floor(7 × 1/3) = 2 units, peak 5
    lines, _ = rate(two_reads("0.007", "2024-01-10T17:00", "2024-01-10T20:00"), t, registry(meter()))
    assert energy(lines) == [("off", None, D("0.002"), D("0.1"), D("0.00")),
                             ("peak", None, D("0.005"), D("0.3"), D("0.00"))]
    lines, _ = rate(two_reads("30", "2024-01-10T17:00", "2024-01-10T23:00"), t, registry(meter()))
    # 17-18 off, 18-22 peak, 22-23 off: 5 + 5 off, 20 peak
    assert energy(lines) == [("off", None, D("10"), D("0.1"), D("1.00")),
                             ("peak", None, D("20"), D("0.3"), D("6.00"))]


# --------------------------------------------------------------------------- time of use


def tou_price(peak_days=ALL_DAYS, off_price="0.1", peak_price="0.3", mode="price", **periods):
    """Peak 18:00-22:00 on `peak_days`, off-peak otherwise."""
    peak_rule = TouRule(ALL_MONTHS, frozenset(peak_days),
                        ((0, 1080, 0), (1080, 1320, 1), (1320, 1440, 0)))
    off_rule = TouRule(ALL_MONTHS, ALL_DAYS - frozenset(peak_days), ((0, 1440, 0),))
    tou_periods = (
        TouPeriod("off", None if off_price is None else D(off_price), periods.get("off_slabs")),
        TouPeriod("peak", None if peak_price is None else D(peak_price), periods.get("peak_slabs")),
    )
    return TimeOfUse(mode, tou_periods, (peak_rule, off_rule))


def test_holiday_beats_weekend_beats_weekday():
    t = tariff(tou=tou_price(peak_days={"weekday"}))
    day = ("2024-01-10T18:00", "2024-01-10T22:00")  # a Wednesday, peak
    assert energy(rate(two_reads("4", *day), t, registry(meter()))[0])[0][0] == "peak"
    weekend = ("2024-01-13T18:00", "2024-01-13T22:00")  # Saturday
    assert energy(rate(two_reads("4", *weekend), t, registry(meter()))[0])[0][0] == "off"
    holiday = Site(holidays=frozenset({dt.date(2024, 1, 10)}))
    assert energy(rate(two_reads("4", *day), t, registry(meter()), site=holiday)[0])[0][0] == "off"
    # a holiday rule wins over the weekend rule on a Saturday holiday
    t2 = tariff(tou=tou_price(peak_days={"holiday"}))
    sat_holiday = Site(holidays=frozenset({dt.date(2024, 1, 13)}))
    lines, _ = rate(two_reads("4", *weekend), t2, registry(meter()), site=sat_holiday)
    assert energy(lines)[0][0] == "peak"


def test_tou_mode_slabs_each_period_its_own_slabs():
    off_slabs = slabs((5, "1", "0.5"), (None, "2", "0.75"))
    peak_slabs = slabs((5, "3", "1"), (None, "4", "2"))
    t = tariff(tou=tou_price(off_price=None, peak_price=None, mode="slabs",
                             off_slabs=off_slabs, peak_slabs=peak_slabs))
    # (12:00, 20:00] with 8: off 6 (12-18), peak 2 (18-20)
    lines, _ = rate(two_reads("8", "2024-01-10T12:00", "2024-01-10T20:00"), t, registry(meter()))
    assert [(ln.component, ln.tou_period, ln.slab, ln.quantity, ln.amount) for ln in lines] == [
        ("energy", "off", 1, D("5"), D("5.00")),
        ("energy", "off", 2, D("1"), D("2.00")),
        ("energy", "peak", 1, D("2"), D("6.00")),
        ("slab_fee", "off", 2, None, D("0.75")),
        ("slab_fee", "peak", 1, None, D("1.00")),
    ]


def test_tou_mode_split_total_largest_remainder_and_adders():
    # total slabs 0-10 @1, then @2; adders: off -0.1, peak +0.5
    t = tariff(energy=slabs((10, "1"), (None, "2", "3")),
               tou=tou_price(off_price="-0.1", peak_price="0.5", mode="split_total"))
    # (15:00, 20:00] with 15: off 9 (15-18), peak 6 (18-20)
    # slab 1 = 10 split 9:6 -> 6, 4; slab 2 = 5 split 9:6 -> 3, 2
    lines, _ = rate(two_reads("15", "2024-01-10T15:00", "2024-01-10T20:00"), t, registry(meter()))
    assert [(ln.component, ln.tou_period, ln.slab, ln.quantity, ln.unit_price, ln.amount)
            for ln in lines] == [
        ("energy", "off", 1, D("6"), D("0.9"), D("5.40")),
        ("energy", "off", 2, D("3"), D("1.9"), D("5.70")),
        ("energy", "peak", 1, D("4"), D("1.5"), D("6.00")),
        ("energy", "peak", 2, D("2"), D("2.5"), D("5.00")),
        ("slab_fee", None, 2, None, None, D("3.00")),
    ]


def test_split_total_remainders_go_to_the_largest_then_earlier():
    # 10 units over q = 7, 8 (thousandths): floors 4666, 5333, remainders 10000, 5000
    assert _largest_remainder(10000, [7000, 8000]) == [4667, 5333]
    assert _largest_remainder(5000, [7000, 8000]) == [2333, 2667]
    assert _largest_remainder(1, [1, 1]) == [1, 0]  # a tie goes to the earlier period
    assert _largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    assert _largest_remainder(5, [0, 3]) == [0, 5]
    assert _largest_remainder(0, [0, 0]) == [0, 0]


def test_split_total_tie_through_rating():
    t = tariff(energy=slabs((None, "1")),
               tou=tou_price(off_price=None, peak_price=None, mode="split_total"))
    # (17:00, 19:00] with 0.001: parts off floor(1/2) = 0, peak 1; slab 0.001 -> peak
    lines, _ = rate(two_reads("0.001", "2024-01-10T17:00", "2024-01-10T19:00"), t, registry(meter()))
    assert energy(lines) == [("peak", 1, D("0.001"), D("1"), D("0.00"))]
    # off 1, peak 1: each slab's single unit is a tie, and goes to `off` (the earlier)
    t2 = tariff(energy=slabs((D("0.001"), "1"), (None, "2")),
                tou=tou_price(off_price=None, peak_price=None, mode="split_total"))
    lines, _ = rate(two_reads("0.002", "2024-01-10T17:00", "2024-01-10T19:00"), t2,
                    registry(meter()))
    assert [(ln.tou_period, ln.slab, ln.quantity) for ln in lines] == [
        ("off", 1, D("0.001")), ("off", 2, D("0.001"))]


def test_tariff_version_in_force_on_the_period_first_day():
    v1 = TariffVersion("T", JAN1, energy=flat("1"))
    v2 = TariffVersion("T", dt.date(2024, 1, 15), energy=flat("2"))
    t = tariff("T", v1, v2)
    lines, _ = rate(two_reads("10", "2024-01-31T00:00", "2024-02-01T12:00"), t, registry(meter()))
    assert [(ln.period_start.month, ln.unit_price) for ln in lines] == [(1, D("1")), (2, D("2"))]


def test_tou_spans_follow_the_version_of_each_billing_period():
    v1 = TariffVersion("T", JAN1, energy=flat("1"))
    v2 = TariffVersion("T", dt.date(2024, 2, 1), tou=tou_price())
    t = tariff("T", v1, v2)
    # (Jan 31 18:00, Feb 1 20:00]: 26 h, 26 units; January's 6 h have no TOU
    lines, _ = rate(two_reads("26", "2024-01-31T18:00", "2024-02-01T20:00"), t, registry(meter()))
    assert [(ln.period_start.month, ln.tou_period, ln.quantity) for ln in lines] == [
        (1, None, D("6")), (2, "off", D("18")), (2, "peak", D("2"))]


# --------------------------------------------------------------------------- DST


def test_local_instant_nonexistent_and_ambiguous_times():
    ny = ZoneInfo("America/New_York")
    # 2024-03-10 02:30 does not exist: starts at the first instant after the gap, 03:00 EDT
    assert local_instant(dt.date(2024, 3, 10), 150, ny, 1) == at("2024-03-10T07:00+00:00")
    assert local_instant(dt.date(2024, 3, 10), 120, ny, 1000) == at("2024-03-10T07:00+00:00", "ms")
    assert local_instant(dt.date(2024, 3, 10), 180, ny, 1) == at("2024-03-10T07:00+00:00")
    # 2024-11-03 01:30 happens twice: its first occurrence, EDT
    assert local_instant(dt.date(2024, 11, 3), 90, ny, 1) == at("2024-11-03T05:30+00:00")
    london = ZoneInfo("Europe/London")
    assert local_instant(dt.date(2024, 3, 31), 60, london, 1) == at("2024-03-31T01:00+00:00")
    assert local_instant(dt.date(2024, 10, 27), 60, london, 1) == at("2024-10-27T00:00+00:00")


def night_day_tou(night_end: int = 120) -> TimeOfUse:
    return TimeOfUse(
        "price",
        (TouPeriod("night", D("1")), TouPeriod("day", D("2"))),
        (TouRule(ALL_MONTHS, ALL_DAYS, ((0, night_end, 0), (night_end, 1440, 1))),),
    )


@pytest.mark.parametrize(
    "day, hours, night",
    [
        ("2024-03-10", 23, "2"),  # spring forward: 00:00-02:00 EST is 2 h (02:00 -> 03:00 EDT)
        ("2024-11-03", 25, "3"),  # fall back: 00:00 EDT to 02:00 EST is 3 h
        ("2024-01-10", 24, "2"),
    ],
)
def test_dst_days_in_new_york(day, hours, night):
    ny = Site(time_zone="America/New_York")
    t = tariff(tou=night_day_tou())
    start = f"{day}T00:00"
    end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat() + "T00:00"
    readings = reads((start, "0"), (end, str(hours)), tz="America/New_York")
    assert readings[1].ts - readings[0].ts == hours * 3600
    lines, _ = rate(readings, t, registry(meter()), site=ny)
    assert energy(lines) == [("night", None, D(night), D("1"), D(night + ".00")),
                             ("day", None, D(str(hours - int(night))), D("2"),
                              D(str(2 * (hours - int(night))) + ".00"))]


def test_dst_span_start_inside_the_gap_and_the_repeated_hour_london():
    london = Site(time_zone="Europe/London")
    # night 00:00-01:30: on 2024-03-31 01:30 GMT does not exist -> night ends at 01:00 GMT
    t = tariff(tou=night_day_tou(90))
    readings = reads(("2024-03-31T00:00+00:00", "0"), ("2024-03-31T23:00+00:00", "23"))
    lines, _ = rate(readings, t, registry(meter()), site=london)
    assert [(ln.tou_period, ln.quantity) for ln in lines] == [("night", D("1")), ("day", D("22"))]
    # 2024-10-27: 01:30 first occurs at 00:30 UTC (BST); night = 23:00Z .. 00:30Z = 1.5 h
    readings = reads(("2024-10-26T23:00+00:00", "0"), ("2024-10-28T00:00+00:00", "25"))
    lines, _ = rate(readings, t, registry(meter()), site=london)
    assert [(ln.tou_period, ln.quantity) for ln in lines] == [("night", D("1.5")),
                                                               ("day", D("23.5"))]


def test_billing_period_starts_at_local_midnight():
    kolkata = Site(time_zone="Asia/Kolkata")  # UTC+05:30
    t = tariff(energy=flat())
    # Jan 31 18:30Z is Feb 1 00:00 local: (Jan 31 12:30Z, Feb 1 00:30Z] splits 6 h / 6 h
    readings = reads(("2024-01-31T12:30+00:00", "0"), ("2024-02-01T00:30+00:00", "12"))
    lines, _ = rate(readings, t, registry(meter()), site=kolkata)
    assert [(ln.period_start.month, ln.quantity) for ln in lines] == [(1, D("6")), (2, D("6"))]


# --------------------------------------------------------------------------- cycles


def test_anchor_day_cycle():
    t = tariff(energy=slabs((1, "1"), (None, "2"), basis="per_day"))
    acct = Account("A", cycle=Cycle(15))
    # (Jan 10, Jan 20]: 10 days, 10 units: 5 before Jan 15 00:00, 5 after
    lines, _ = rate(two_reads("10", "2024-01-10T00:00", "2024-01-20T00:00"), t,
                    registry(meter(), accounts=(acct,)))
    assert [(ln.period_start, ln.period_end, ln.quantity) for ln in lines] == [
        (dt.date(2023, 12, 15), dt.date(2024, 1, 14), D("5")),
        (dt.date(2024, 1, 15), dt.date(2024, 2, 14), D("5")),
    ]
    # per_day bound: Feb 15 .. Mar 14 2024 is 29 days
    lines, _ = rate(two_reads("30", "2024-02-20T00:00", "2024-02-21T00:00"), t,
                    registry(meter(), accounts=(acct,)))
    assert energy(lines) == [(None, 1, D("29"), D("1"), D("29.00")),
                             (None, 2, D("1"), D("2"), D("2.00"))]


def test_site_default_cycle_and_the_version_of_an_anchor_period():
    site = Site(default_cycle=Cycle(20))
    v1 = TariffVersion("T", dt.date(2023, 12, 20), energy=flat("1"))
    v2 = TariffVersion("T", dt.date(2024, 1, 10), energy=flat("2"))
    # Jan 12 is in the period starting Dec 20, when v1 was in force
    lines, _ = rate(two_reads("1", "2024-01-12T00:00", "2024-01-13T00:00"), tariff("T", v1, v2),
                    registry(meter()), site=site)
    assert [(ln.period_start, ln.unit_price) for ln in lines] == [(dt.date(2023, 12, 20), D("1"))]


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize("rule, pos, neg", [("half_even", "0.12", "-0.12"),
                                            ("half_up", "0.13", "-0.13")])
def test_half_even_and_half_up(rule, pos, neg):
    site = Site(rounding=rule)
    t = tariff(energy=flat("0.125"))
    lines, _ = rate(two_reads("1"), t, registry(meter()), site=site)
    assert energy(lines)[0][-1] == D(pos)
    # a negative line: split_total with a negative adder, -0.125
    t = tariff(energy=slabs((None, "0")),
               tou=TimeOfUse("split_total", (TouPeriod("x", D("-0.125")),),
                             (TouRule(ALL_MONTHS, ALL_DAYS, ((0, 1440, 0),)),)))
    lines, _ = rate(two_reads("1"), t, registry(meter()), site=site)
    assert energy(lines)[0][-1] == D(neg)
    # 0.135 -> half_even 0.14 (4 is even), half_up 0.14
    t = tariff(energy=flat("0.135"))
    assert energy(rate(two_reads("1"), t, registry(meter()), site=site)[0])[0][-1] == D("0.14")


def test_each_line_is_rounded_on_its_own():
    t = tariff(tou=tou_price(off_price="0.0125", peak_price="0.0125"))
    # 0.001 off + 0.001 peak... no: 1 + 1 at 0.0125 = 0.0125 each -> 0.01 + 0.01, not 0.03
    lines, _ = rate(two_reads("2", "2024-01-10T17:00", "2024-01-10T19:00"), t, registry(meter()))
    assert [ln.amount for ln in lines] == [D("0.01"), D("0.01")]


def test_minor_unit_exponent_zero():
    site = Site(minor_unit_exponent=0, rounding="half_up")
    lines, _ = rate(two_reads("5"), tariff(energy=flat("0.5")), registry(meter()), site=site)
    assert energy(lines)[0][-1] == D("3")


def test_fixed_fee_minimum_and_tax_lines_in_order():
    t = tariff(
        energy=flat("1"),
        fixed_charge=D("1"),
        fees=(("parking", D("2")), ("club", D("0.5"))),
        minimum_charge=D("10"),
        taxes=(Tax("gst", D("18"), ("energy", "fixed_charge")), Tax("cess", D("1"), ("minimum_charge",))),
    )
    lines, _ = rate(two_reads("3"), t, registry(meter()))
    assert [(ln.component, ln.quantity, ln.unit_price, ln.amount) for ln in lines] == [
        ("energy", D("3"), D("1"), D("3.00")),
        ("fixed_charge", None, None, D("1.00")),
        ("fee:parking", None, None, D("2.00")),
        ("fee:club", None, None, D("0.50")),
        ("minimum_charge", None, None, D("3.50")),  # 10 - (3 + 1 + 2 + 0.5)
        ("tax:gst", None, None, D("0.72")),  # 18% of 4.00
        ("tax:cess", None, None, D("0.04")),  # 1% of 3.50 = 0.035 -> 0.04 (half_even)
    ]


def test_minimum_charge_over_named_components_and_only_when_positive():
    base = dict(energy=flat("1"), fixed_charge=D("5"), minimum_charge=D("10"))
    lines, _ = rate(two_reads("3"), tariff(**base, minimum_on=("energy",)), registry(meter()))
    assert amounts(lines)[-1] == ("minimum_charge", D("7.00"))
    lines, _ = rate(two_reads("12"), tariff(**base, minimum_on=("energy",)), registry(meter()))
    assert [c for c, _ in amounts(lines)] == ["energy", "fixed_charge"]
    lines, _ = rate(two_reads("5"), tariff(**base), registry(meter()))  # 5 + 5 = 10: no line
    assert [c for c, _ in amounts(lines)] == ["energy", "fixed_charge"]


def test_tax_line_on_a_zero_base_and_percent_exactness():
    t = tariff(energy=flat("1"), fixed_charge=D("0.05"),
               taxes=(Tax("vat", D("12.5"), ("energy",)), Tax("fx", D("50"), ("fixed_charge",))))
    lines, _ = rate(two_reads("0"), t, registry(meter()))
    # no energy: vat on 0 is a 0.00 line; 50% of 0.05 = 0.025 -> 0.02 (half_even)
    assert amounts(lines) == [("fixed_charge", D("0.05")), ("tax:vat", D("0.00")),
                              ("tax:fx", D("0.02"))]


def test_touched_period_with_zero_consumption_gets_its_fixed_lines():
    t = tariff(energy=flat("1"), fixed_charge=D("50"), fees=(("sinking", D("10")),))
    lines, _ = rate(two_reads("0"), t, registry(meter()))
    assert amounts(lines) == [("fixed_charge", D("50.00")), ("fee:sinking", D("10.00"))]


# --------------------------------------------------------------------------- accounts


def test_account_level_area_charge_once_per_account_period():
    maint = Tariff("M", "maintenance", (TariffVersion("M", JAN1, area_charge_rate=D("2.5"),
                                                      fees=(("parking", D("300")),)),))
    power = tariff(energy=flat("1"), fixed_charge=D("1"))
    accounts = (Account("A", area=D("100.5"), tariff_id="M"), Account("B", area=D("80")))
    reg = registry(meter("m1", "A"), meter("m2", "A"), meter("m3", "B"), accounts=accounts)
    readings = (reads(("2024-01-10T00:00", "0"), ("2024-01-11T00:00", "1"), meter_id="m2")
                + reads(("2024-01-10T00:00", "0"), ("2024-01-11T00:00", "2"), meter_id="m1")
                + reads(("2024-01-10T00:00", "0"), ("2024-01-11T00:00", "3"), meter_id="m3"))
    lines, _ = rate(readings, {"T": power, "M": maint}, reg)
    assert [(ln.account_id, ln.meter_id, ln.tariff_id, ln.component, ln.quantity, ln.unit_price,
             ln.amount) for ln in lines] == [
        ("A", "m1", "T", "energy", D("2"), D("1"), D("2.00")),
        ("A", "m1", "T", "fixed_charge", None, None, D("1.00")),
        ("A", "m2", "T", "energy", D("1"), D("1"), D("1.00")),
        ("A", "m2", "T", "fixed_charge", None, None, D("1.00")),
        ("A", None, "M", "area_charge", D("100.5"), D("2.5"), D("251.25")),
        ("A", None, "M", "fee:parking", None, None, D("300.00")),
        ("B", "m3", "T", "energy", D("3"), D("1"), D("3.00")),
        ("B", "m3", "T", "fixed_charge", None, None, D("1.00")),
    ]
    assert all(isinstance(ln, RefLine) for ln in lines)


def test_account_tariff_only_in_touched_periods():
    maint = Tariff("M", "maintenance", (TariffVersion("M", JAN1, fixed_charge=D("100")),))
    reg = registry(meter(), accounts=(Account("A", tariff_id="M"),))
    tariffs = {"T": tariff(energy=flat()), "M": maint}
    lines, _ = rate(reads(("2024-01-10T00:00", "0")), tariffs, reg)  # a baseline only
    assert lines == []
    lines, _ = rate(two_reads("1", "2024-01-31T00:00", "2024-02-01T12:00"), tariffs, reg)
    assert [(ln.meter_id, ln.period_start.month, ln.component) for ln in lines] == [
        ("m1", 1, "energy"), ("m1", 2, "energy"), (None, 1, "fixed_charge"),
        (None, 2, "fixed_charge")]


def test_meter_area_charge_uses_the_account_area():
    t = tariff(area_charge_rate=D("0.333"))
    reg = registry(meter(), accounts=(Account("A", area=D("10")),))
    lines, _ = rate(two_reads("1"), t, reg)
    assert [(ln.component, ln.quantity, ln.unit_price, ln.amount) for ln in lines] == [
        ("area_charge", D("10"), D("0.333"), D("3.33"))]


def test_integer_meter_ids_and_sorting():
    t = tariff(energy=flat())
    reg = registry(meter(10), meter(9))
    readings = (reads(("2024-01-10T00:00", "0"), ("2024-01-11T00:00", "1"), meter_id=10)
                + reads(("2024-01-10T00:00", "0"), ("2024-01-11T00:00", "2"), meter_id=9))
    lines, _ = rate(readings, t, reg)
    assert [ln.meter_id for ln in lines] == [9, 10]


# --------------------------------------------------------------------------- errors


def test_unknown_tariff_in_the_registry_is_an_error():
    with pytest.raises(TariffError):
        rate([], {}, registry(meter()))


def test_malformed_readings_are_errors():
    t = tariff(energy=flat())
    with pytest.raises(InputError):
        rate([RefReading(None, 0, D(1))], t, registry(meter()))
    with pytest.raises(InputError):
        rate([RefReading("m1", None, D(1))], t, registry(meter()))
    with pytest.raises(InputError):  # not quantized to the site's 0.001
        rate([RefReading("m1", at("2024-01-10T00:00"), D("0.0001"))], t, registry(meter()))
    with pytest.raises(InputError):
        rate([], t, registry(meter()), unit="minutes")


def test_readings_before_any_version_in_force_are_ancient_not_errors():
    t = tariff("T", TariffVersion("T", dt.date(2024, 2, 1), energy=flat()))
    lines, anomalies = rate(two_reads("1"), t, registry(meter()))
    assert lines == [] and [a.code for a in anomalies] == ["ancient_reading"] * 2
    # a version starting on the first day of the period the interval reaches is enough
    lines, _ = rate(two_reads("1", "2024-02-01T00:00", "2024-02-02T00:00"), t, registry(meter()))
    assert len(lines) == 1


def test_same_result_in_every_time_unit():
    t = tariff(tou=tou_price())
    results = []
    for unit in ("s", "ms", "us", "ns"):
        readings = reads(("2024-01-31T17:00", "0"), ("2024-02-01T19:00", "10.007"), unit=unit)
        results.append(rate(readings, t, registry(meter()), unit=unit)[0])
    assert results[0] == results[1] == results[2] == results[3]


# --------------------------------------------------------------------------- DST, brute force


def _transition_days(zone: ZoneInfo, year: int) -> list[dt.date]:
    days = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        noon = dt.datetime.combine(day, dt.time(12), tzinfo=UTC_TZ)
        if noon.astimezone(zone).utcoffset() != (noon + dt.timedelta(days=1)).astimezone(zone).utcoffset():
            days += [day, day + dt.timedelta(days=1), day + dt.timedelta(days=2)]
        day += dt.timedelta(days=1)
    return sorted(set(days))


UTC_TZ = dt.timezone.utc


@pytest.mark.parametrize(
    "zone_name",
    ["America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Beirut"],
)
def test_local_instant_is_the_first_instant_whose_wall_clock_reaches_it(zone_name):
    """Brute force: a local time starts at the first instant whose wall clock is
    >= it; that is the first occurrence of a repeated time and the end of a gap."""
    zone = ZoneInfo(zone_name)
    for day in _transition_days(zone, 2024):
        start = int(dt.datetime.combine(day, dt.time(), tzinfo=UTC_TZ).timestamp()) - 86400
        seconds = list(range(start, start + 3 * 86400, 60))  # transitions fall on whole minutes
        walls = [dt.datetime.fromtimestamp(s, zone).replace(tzinfo=None) for s in seconds]
        for minute in range(0, 1440, 15):
            wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
            expected = next(s for s, w in zip(seconds, walls, strict=True) if w >= wall)
            assert local_instant(day, minute, zone, 1) == expected, (zone_name, wall)


def test_midnight_inside_a_dst_gap_santiago():
    # 2024-09-08 00:00 does not exist in America/Santiago: the day starts at 01:00 -03 (04:00Z)
    site = Site(time_zone="America/Santiago")
    t = tariff(tou=night_day_tou())
    readings = reads(("2024-09-08T03:00+00:00", "0"), ("2024-09-08T06:00+00:00", "3"))
    lines, _ = rate(readings, t, registry(meter()), site=site)
    # Sep 7 23:00-24:00 day, then night 04:00Z-05:00Z (01:00-02:00 -03), then day
    assert [(ln.tou_period, ln.quantity) for ln in lines] == [("night", D("1")), ("day", D("2"))]


# --------------------------------------------------------------------------- properties


@given(
    q=st.integers(0, 10**12),
    t0=st.integers(-(10**12), 10**12),
    span=st.integers(1, 10**9),
    data=st.data(),
)
def test_split_parts_are_non_negative_sum_to_q_and_telescope(q, t0, span, data):
    t1 = t0 + span
    inner = sorted(set(data.draw(st.lists(st.integers(t0 + 1, t1 - 1), max_size=6)))) if span > 1 else []
    parts = _split(q, t0, t1, inner)
    assert all(p >= 0 for p in parts) and sum(parts) == q
    # an extra boundary only splits one part in two: adjacent parts keep their sum
    if len(inner) >= 1:
        fewer = _split(q, t0, t1, inner[1:])
        assert fewer[0] == parts[0] + parts[1] and fewer[1:] == parts[2:]


@given(total=st.integers(0, 10**6), weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=5))
def test_largest_remainder_sums_and_stays_within_one_of_the_share(total, weights):
    shares = _largest_remainder(total, weights)
    if sum(weights) == 0:
        assert shares == [0] * len(weights)
        return
    assert sum(shares) == total
    for share, w in zip(shares, weights, strict=True):
        exact_floor = total * w // sum(weights)
        assert exact_floor <= share <= exact_floor + 1


@given(
    cut=st.integers(1, 30 * 24 - 1),
    values=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
)
def test_chunked_readings_price_like_their_total_on_a_linear_tariff(cut, values):
    """With a flat price and no other component, arrival order and chunking do not
    matter: the period's energy is the sum of its deltas."""
    t = tariff(energy=flat("1"))
    start = at("2024-01-01T00:00")
    readings = [RefReading("m1", start, D(0))]
    total = 0
    for i, v in enumerate(values):
        total += v
        readings.append(RefReading("m1", start + (i + 1) * cut * 60, D(total).scaleb(-3)))
    lines, anomalies = rate(readings, t, registry(meter()))
    assert anomalies == []
    assert sum((ln.quantity for ln in lines), D(0)) == D(total).scaleb(-3)


# --------------------------------------------------------------------------- the reading window

WINDOW_NOW = dt.datetime(2024, 1, 20, tzinfo=dt.timezone.utc)


def rate_at(readings, tariffs, reg, site=UTC, unit="s", now=WINDOW_NOW):
    if isinstance(tariffs, Tariff):
        tariffs = {tariffs.id: tariffs}
    return reference_rate(readings, ts_unit=unit, site=site, registry=reg, tariffs=tariffs, now=now)


def test_a_reading_after_now_plus_the_tolerance_is_future_and_not_the_last_reading():
    t = tariff(energy=flat())
    limit = at("2024-01-21T00:00")  # now + 24 hours
    readings = reads(("2024-01-10T00:00", "0"), (limit + 1, "500"), (limit, "5"), (10**15, "7"))
    lines, anomalies = rate_at(readings, t, registry(meter()))
    assert [(a.row, a.code, a.priced) for a in anomalies] == [(1, "future_reading", False),
                                                            (3, "future_reading", False)]
    assert energy(lines) == [(None, 1, D(5), D(1), D("5.00"))]  # 0 -> 5, not 0 -> 500
    strict = Site(future_tolerance_hours=0)
    _, anomalies = rate_at(readings, t, registry(meter()), site=strict)
    assert [a.row for a in anomalies] == [1, 2, 3]


def test_readings_before_the_first_period_every_tariff_of_the_meter_prices_are_ancient():
    """The meter's tariff from 2023-01-01, its account's from 2024-01-05: with
    calendar months the account's is first in force in February."""
    later = tariff("M", TariffVersion("M", dt.date(2024, 1, 5), fixed_charge=D(10)))
    reg = registry(meter(), accounts=(Account("A", tariff_id="M"),))
    readings = reads(("2024-01-31T23:59", "0"), ("2024-02-01T00:00", "1"), ("2024-02-02T00:00", "3"))
    lines, anomalies = rate_at(readings, {"T": tariff(energy=flat()), "M": later}, reg,
                               now=dt.datetime(2024, 3, 1))
    assert [(a.row, a.code) for a in anomalies] == [(0, "ancient_reading")]
    assert energy(lines) == [(None, 1, D(2), D(1), D("2.00"))]


def test_an_interval_meters_interval_must_start_inside_the_window():
    m = meter(mode="interval", interval_minutes=15)
    t = tariff("T", TariffVersion("T", dt.date(2024, 1, 1), energy=flat()))
    readings = reads(("2024-01-01T00:14", "1"), ("2024-01-01T00:15", "2"))
    _, anomalies = rate_at(readings, t, registry(m))
    assert [(a.row, a.code) for a in anomalies] == [(0, "ancient_reading")]


def test_instants_python_dates_cannot_hold_are_window_anomalies_in_every_unit():
    t = tariff(energy=flat())
    for unit in ("s", "ms", "us", "ns"):
        ups = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
        readings = [RefReading("m1", 2**63 - 1, D(1)), RefReading("m1", -(2**63), D(1)),
                    RefReading("m1", 300_000 * 365 * 86400 * ups, D(1))]
        _, anomalies = rate_at(readings, t, registry(meter()), unit=unit)
        assert [a.code for a in anomalies] == ["future_reading", "ancient_reading", "future_reading"]

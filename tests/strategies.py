"""Hypothesis strategies for random sites, tariffs, registries and readings.

They aim at the edges: slab bounds hit exactly, zero use, readings that
straddle month and time-of-use boundaries, rollovers, duplicates, spikes,
daylight-saving days, and (in one world of three) reading values anywhere in
the range the readings layer accepts, its ends included.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
from hypothesis import strategies as st

from rating.model.registry import Account, Meter, Registry
from rating.model.site import Cycle, Site
from rating.model.tariff import (
    Package,
    Slab,
    SlabSet,
    Tariff,
    TariffVersion,
    Tax,
    TimeOfUse,
    TouPeriod,
    TouRule,
)

ZONES = ("UTC", "Asia/Kolkata", "America/New_York", "Europe/London")
ALL_DAY_TYPES = frozenset({"weekday", "weekend", "holiday"})
US = 1_000_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def quantity_bounds(quantity_decimals: int) -> tuple[int, int]:
    """The reading values, in quantity units, that the readings layer accepts
    (rating.readings.batches.to_fixed) in the column type `value_type` picks: an int64
    column at 0 decimals carries all of int64; a decimal128 column carries
    +-(2^63 - 1) units (its check is symmetric)."""
    return (INT64_MIN if quantity_decimals == 0 else -INT64_MAX), INT64_MAX


def value_type(quantity_decimals: int) -> pa.DataType:
    """The Arrow type of a readings table's values for `quantity_bounds`."""
    return pa.int64() if quantity_decimals == 0 else pa.decimal128(38, quantity_decimals)


def decimals(max_units: int, places: int, *, minimum: int = 0) -> st.SearchStrategy[Decimal]:
    return st.integers(minimum * 10**places, max_units * 10**places).map(
        lambda n: Decimal(n).scaleb(-places)
    )


@st.composite
def slab_sets(draw, quantity_decimals: int) -> SlabSet:
    count = draw(st.integers(1, 4))
    uppers = sorted(set(draw(st.lists(decimals(500, min(quantity_decimals, 1), minimum=1),
                                      min_size=count - 1, max_size=count - 1))))
    prices = draw(st.lists(decimals(20, draw(st.sampled_from([0, 2, 6]))),
                           min_size=len(uppers) + 1, max_size=len(uppers) + 1))
    fees = draw(st.lists(st.sampled_from([Decimal(0), Decimal(0), Decimal("25.5")]),
                         min_size=len(prices), max_size=len(prices)))
    bounds = [*uppers, None]
    slabs = tuple(Slab(u, p, f) for u, p, f in zip(bounds, prices, fees, strict=True))
    return SlabSet(draw(st.sampled_from(["graduated", "volume"])),
                   draw(st.sampled_from(["period", "per_day"])), slabs)


@st.composite
def time_of_use(draw, quantity_decimals: int) -> tuple[TimeOfUse, SlabSet | None]:
    mode = draw(st.sampled_from(["price", "slabs", "split_total", "matrix"]))
    names = ["offpeak", "peak", "shoulder"][: draw(st.integers(2, 3))]
    energy = draw(slab_sets(quantity_decimals)) if mode in ("split_total", "matrix") else None
    periods = []
    for name in names:
        if mode == "price":
            periods.append(TouPeriod(name, price=draw(decimals(15, 4))))
        elif mode == "slabs":
            periods.append(TouPeriod(name, slabs=draw(slab_sets(quantity_decimals))))
        elif mode == "matrix":
            assert energy is not None
            prices = st.lists(decimals(20, draw(st.sampled_from([0, 2, 6]))),
                              min_size=len(energy.slabs), max_size=len(energy.slabs))
            periods.append(TouPeriod(name, tier_prices=tuple(draw(prices))))
        else:
            periods.append(TouPeriod(name, price=draw(decimals(3, 2, minimum=-1))))
    cuts = sorted(set(draw(st.lists(st.integers(1, 23), min_size=len(names) - 1,
                                    max_size=len(names) + 1))))
    edges = [0, *(c * 60 + draw(st.sampled_from([0, 30])) for c in cuts), 1440]
    spans = tuple(
        (edges[i], edges[i + 1], i % len(names)) for i in range(len(edges) - 1) if edges[i] < edges[i + 1]
    )
    weekend = ((0, 1440, 0),)
    rules = (
        TouRule(frozenset(range(1, 13)), frozenset({"weekday"}), spans),
        TouRule(frozenset(range(1, 13)), frozenset({"weekend", "holiday"}), weekend),
    )
    return TimeOfUse(mode, tuple(periods), rules), energy


@st.composite
def packages(draw, quantity_decimals: int) -> Package:
    places = min(quantity_decimals, 1)
    return Package(free=draw(decimals(50, places)), block=draw(decimals(20, places, minimum=1)),
                   price=draw(decimals(30, draw(st.sampled_from([0, 2, 6])))))


@st.composite
def tariffs(draw, tariff_id: str, quantity_decimals: int) -> Tariff:
    versions = []
    dates = sorted(set(draw(st.lists(st.sampled_from(
        [dt.date(2020, 1, 1), dt.date(2026, 11, 15), dt.date(2026, 12, 1)]), min_size=1, max_size=2))))
    dates[0] = dt.date(2020, 1, 1)
    for start in dates:
        tou, energy, export = None, None, None
        package = draw(st.one_of(st.none(), packages(quantity_decimals)))
        if draw(st.integers(0, 5)) == 0:  # an export register's tariff: a credit per unit
            package, export = None, draw(decimals(2, draw(st.sampled_from([0, 2, 6]))))
        elif draw(st.booleans()):
            tou, energy = draw(time_of_use(quantity_decimals))
        elif package is None or draw(st.booleans()):
            energy = draw(slab_sets(quantity_decimals))
        fixed = draw(st.one_of(st.none(), decimals(100, 2)))
        fees = (("meter_rent", draw(decimals(20, 2))),) if draw(st.booleans()) else ()
        minimum = draw(st.one_of(st.none(), decimals(500, 2)))
        taxes = ()
        if draw(st.booleans()):
            gst_on = ("fixed_charge",) if fixed is not None else ("energy",)
            taxes = (Tax("duty", draw(decimals(20, 2)), ("energy",)), Tax("gst", Decimal(18), gst_on))
        versions.append(TariffVersion(
            tariff_id, start, unit="kWh", energy=energy, tou=tou, package=package, export_price=export,
            fixed_charge=fixed,
            fees=fees, minimum_charge=minimum, taxes=taxes,
        ))
    return Tariff(tariff_id, tariff_id, tuple(versions))


def account_tariff() -> Tariff:
    version = TariffVersion("MAINT", dt.date(2020, 1, 1), area_charge_rate=Decimal("2.75"),
                            fees=(("sinking_fund", Decimal("150.00")),),
                            taxes=(Tax("gst", Decimal(18), ("area_charge",)),))
    return Tariff("MAINT", "maintenance", (version,))


@dataclass(frozen=True)
class World:
    site: Site
    registry: Registry
    tariffs: dict[str, Tariff]
    readings: list[tuple[str, int, Decimal | None]]  # (meter_id, ts_us, value)
    now: dt.datetime  # the reading window's now


@st.composite
def worlds(draw, *, max_readings: int = 40) -> World:
    qd = draw(st.sampled_from([0, 2, 3]))
    site = Site(
        time_zone=draw(st.sampled_from(ZONES)),
        rounding=draw(st.sampled_from(["half_even", "half_up"])),
        quantity_decimals=qd,
        holidays=frozenset({dt.date(2026, 11, 2), dt.date(2026, 11, 30)}),
        default_cycle=Cycle(draw(st.sampled_from([1, 1, 15]))),
        future_tolerance_hours=draw(st.sampled_from([0, 1, 24])),
    )
    tariff_map = {"T1": draw(tariffs("T1", qd)), "T2": draw(tariffs("T2", qd)), "MAINT": account_tariff()}
    meters = []
    for i in range(draw(st.integers(1, 4))):
        mode = draw(st.sampled_from(["register", "register", "interval"]))
        meters.append(Meter(
            meter_id=f"m{i}",
            account_id=f"a{i % 2}",
            tariff_id=draw(st.sampled_from(["T1", "T2"])),
            mode=mode,
            multiplier=draw(st.sampled_from([1, 1, 2, 40])),
            register_digits=draw(st.sampled_from([0, 4, 5])) if mode == "register" else 0,
            max_rate_per_hour=draw(st.one_of(st.none(), decimals(50, min(qd, 1)))),
            interval_minutes=draw(st.sampled_from([15, 60])),
        ))
    accounts = [
        Account("a0", area=Decimal("84.50"), tariff_id="MAINT"),
        Account("a1", area=Decimal("120"), cycle=Cycle(draw(st.sampled_from([1, 20])))),
    ]
    registry = Registry(meters, accounts)
    extreme = draw(st.sampled_from([False, False, True]))
    now = READINGS_START + dt.timedelta(hours=draw(st.integers(0, 40 * 24)))
    readings = draw(reading_lists(meters, qd, max_readings, extreme))
    for _ in range(draw(st.integers(0, 3))):
        reading = draw(window_edge_readings(meters, site, now))
        readings.insert(draw(st.integers(0, len(readings))), reading)
    return World(site, registry, tariff_map, readings, now)


def extreme_values(qd: int) -> st.SearchStrategy[int]:
    """Quantity units anywhere in the accepted range, its ends and zero often."""
    low, high = quantity_bounds(qd)
    ends = [low, low + 1, -1, 0, 1, high // 2, high // 2 + 1, high - 1, high]
    return st.sampled_from(ends) | st.integers(low, high)


READINGS_START = dt.datetime(2026, 11, 28, 20, tzinfo=dt.timezone.utc)
FAR_INSTANTS_US = (
    -(2**63), 2**63 - 1,  # the ends of int64 microseconds: ~292,000 years from 1970
    -2_208_988_800_000_001, 32_503_680_000_000_000,  # 1899-12-31T23:59:59.999999Z, 3000-01-01Z
    1_577_822_400_000_000, 1_578_614_400_000_000,  # 2019-12-31T20:00Z, 2020-01-10Z
)


@st.composite
def window_edge_readings(draw, meters: list[Meter], site: Site, now: dt.datetime):
    """A reading at an edge of the reading window: just inside or outside now +
    tolerance, before or around the tariffs' first priced period (2020-01-01
    local, the 15th or 20th with an anchor cycle; interval meters' intervals
    reaching back over it), or outside what Python dates hold."""
    meter = draw(st.sampled_from(meters))
    latest_us = int(now.timestamp()) * US + site.future_tolerance_hours * 3600 * US
    first = dt.datetime.combine(draw(st.sampled_from([dt.date(2020, 1, d) for d in (1, 15, 20)])),
                                dt.time(), site.zone)
    first_us = int(first.timestamp()) * US
    ts = draw(st.sampled_from([
        *FAR_INSTANTS_US, latest_us, latest_us + 1,
        *(first_us + minutes * 60 * US + extra for minutes in (0, 15, 60) for extra in (-1, 0)),
    ]))
    value = Decimal(draw(st.integers(0, 9_000))).scaleb(-site.quantity_decimals)
    return (str(meter.meter_id), ts, value)


@st.composite
def reading_lists(draw, meters: list[Meter], qd: int, max_readings: int, extreme: bool = False):
    """Per meter a walk in time and value, then interleaved at random. With
    `extreme`, some steps jump anywhere in the accepted value range."""
    start = int(dt.datetime(2026, 11, 28, 20, tzinfo=dt.timezone.utc).timestamp()) * US
    low, high = quantity_bounds(qd)
    steps = ["small", "small", "zero", "back", "big", "null"] + (["extreme"] * 3 if extreme else [])
    per_meter = []
    for meter in meters:
        t = start + draw(st.integers(-3 * 3600, 3 * 3600)) * US
        value = draw(st.integers(0, 99_990)) * 10**qd if meter.register_digits else draw(
            st.integers(0, 10**6))
        walk = []
        for _ in range(draw(st.integers(0, max_readings // len(meters)))):
            t += draw(st.sampled_from([0, -900, 900, 900, 3600, 5400, 86400, 7 * 86400])) * US
            step = draw(st.sampled_from(steps))
            if step == "small":
                value += draw(st.integers(0, 5 * 10**qd))
            elif step == "back":
                value -= draw(st.integers(1, 3 * 10**qd))
            elif step == "big":
                value += draw(st.integers(10**qd, 10**(5 + qd)))
            elif step == "extreme":
                value = draw(extreme_values(qd))
            value = min(max(value, low), high)  # a walk from an end stays in the range
            if meter.register_digits and step not in ("null", "extreme"):
                # wrap like the register; now and then land just past its range
                value %= 10**meter.register_digits * 10**qd + draw(st.sampled_from([0, 0, 0, 7]))
            if meter.mode == "interval" and step != "extreme":
                value = abs(value) % (20 * 10**qd) - draw(st.sampled_from([0, 0, 0, 1]))
            walk.append((str(meter.meter_id), t, None if step == "null" else Decimal(value).scaleb(-qd)))
        per_meter.append(walk)
    merged = []
    while any(per_meter):
        choices = [i for i, walk in enumerate(per_meter) if walk]
        merged.append(per_meter[draw(st.sampled_from(choices))].pop(0))
    if draw(st.booleans()) and merged:
        merged.insert(draw(st.integers(0, len(merged))), ("ghost", merged[0][1], Decimal(1)))
    return merged

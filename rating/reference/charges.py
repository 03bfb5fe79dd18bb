"""The reference rater: docs/semantics.md, slowly and readably.

This module DEFINES the rating semantics. The fast engine (Cython kernel and
exact numpy pricing) must give the same lines and anomalies, which property
tests check. It is written from the contract alone, one function per rule,
with Python integers and `decimal.Decimal` only: no numpy, no pyarrow, no
binary floats.

Internally quantities are Python ints counting `site.quantity_unit`
(`qty`), times are ints in the readings' own unit, money is `Decimal`.

Charge lines are returned sorted by

    (account_id, meter_id (None, the account-level lines, last), period_start,
     component, tou index (None first), slab (None first))

with components in the order energy, slab_fee, fixed_charge, area_charge,
fee:<name> (in the tariff's order), minimum_charge, tax:<name> (in the
tariff's order). Anomalies are returned in input (row) order, at most one per
reading.

Choices where the contract is silent are marked `CHOICE:` below.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from zoneinfo import ZoneInfo

from rating.errors import AmountOverflowError, InputError, TariffError
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Cycle, Site
from rating.model.tariff import DayType, SlabSet, Tariff, TariffVersion

UNITS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
INT64_MAX = 2**63 - 1
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# Every Decimal operation of the rating logic is exact: a result that would
# need rounding raises Inexact instead. Rounding happens only in `_round_money`.
_EXACT = Context(
    prec=400, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero]
)
_ROUNDING = Context(prec=400, traps=[InvalidOperation, Overflow])


# --------------------------------------------------------------------------- #
# Public records
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class RefReading:
    meter_id: str | int
    ts: int  # epoch count in the unit given to reference_rate
    value: Decimal | None  # a multiple of site.quantity_unit (quantized at the edge)


@dataclass(frozen=True)
class RefLine:
    """One charge line; compare as a tuple."""

    account_id: str
    meter_id: str | int | None  # None on account-level lines
    tariff_id: str
    period_start: dt.date
    period_end: dt.date  # last day of the period, inclusive
    component: str
    tou_period: str | None
    slab: int | None  # counts from 1
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal


@dataclass(frozen=True)
class RefAnomaly:
    row: int
    meter_id: str | int
    ts: int
    code: str
    delta: Decimal | None
    priced: bool


# --------------------------------------------------------------------------- #
# Consumption: per-meter state in arrival order ("Meters and readings")
# --------------------------------------------------------------------------- #


@dataclass
class _MeterState:
    """`(last_ts, last_value, has_last)`; only an accepted reading moves it."""

    last_ts: int = 0
    last_value: int = 0
    has_last: bool = False


@dataclass(frozen=True)
class _Interval:
    """An accepted consumption `q` over `(t0, t1]`."""

    meter: Meter
    t0: int
    t1: int
    q: int


def _to_qty(value: Decimal, site: Site, *, row: int) -> int:
    """A reading value as an integer count of the quantity unit; quantizing
    is the edge's job, so a finer value is an InputError here."""
    units = value.scaleb(site.quantity_decimals)
    if units != units.to_integral_value():
        raise InputError(
            f"value {value} is not a multiple of {site.quantity_unit}", where=f"reading row {row}"
        )
    return int(units)


def _qty_decimal(qty: int, site: Site) -> Decimal:
    return Decimal(qty).scaleb(-site.quantity_decimals)


def _register_modulus(meter: Meter, site: Site) -> int:
    """10^N in quantity units, 0 when the register never rolls over."""
    if meter.register_digits <= 0:
        return 0
    return 10**meter.register_digits * 10**site.quantity_decimals


def _range_anomaly(meter: Meter, value: int, site: Site) -> str | None:
    """Rule 2: register value outside [0, 10^N) -> out_of_range (only when N > 0);
    interval value < 0 -> negative_quantity."""
    if meter.mode == "interval":
        return "negative_quantity" if value < 0 else None
    modulus = _register_modulus(meter, site)
    if modulus and not 0 <= value < modulus:
        return "out_of_range"
    return None


def _order_anomaly(state: _MeterState, ts: int, value: int) -> str | None:
    """Rules 3-4: same ts as the last accepted reading -> duplicate (same value)
    or conflicting_duplicate; an earlier ts -> out_of_order."""
    if not state.has_last:
        return None
    if ts == state.last_ts:
        return "duplicate" if value == state.last_value else "conflicting_duplicate"
    if ts < state.last_ts:
        return "out_of_order"
    return None


def _register_delta(meter: Meter, state: _MeterState, value: int, site: Site) -> tuple[int, bool]:
    """Rule 6: `d = value - last_value`; a negative d is a rollover when
    N > 0 and `d + 10^N < 10^N / 2`, then `d += 10^N`.
    Returns (d, rolled_over); a negative d that is no rollover is returned as is."""
    d = value - state.last_value
    modulus = _register_modulus(meter, site)
    if d < 0 and modulus and 2 * (d + modulus) < modulus:  # d + 10^N < 10^N / 2, exactly
        return d + modulus, True
    return d, False


def _interval_length(meter: Meter, ups: int) -> int:
    """Rule 6 (interval meters): the interval is `interval_minutes` long."""
    return meter.interval_minutes * 60 * ups


def _consumption(d: int, meter: Meter) -> int:
    """Rule 7: `q = d × multiplier`; overflow is an error, not an anomaly."""
    q = d * meter.multiplier
    if not -INT64_MAX - 1 <= q <= INT64_MAX:
        raise AmountOverflowError(
            f"consumption {d} × multiplier {meter.multiplier} exceeds the int64 quantity range",
            where=f"meter {meter.meter_id!r}",
        )
    return q


def _is_spike(meter: Meter, q: int, t0: int, t1: int, ups: int, site: Site) -> bool:
    """Rule 8: with R = max_rate_per_hour, `q × hour > R × (t1 − t0)`, exactly,
    with `hour` in the timestamp unit and R in quantity units."""
    if meter.max_rate_per_hour is None:
        return False
    hour = 3600 * ups
    rate_qty = meter.max_rate_per_hour.scaleb(site.quantity_decimals)  # exact (may be fractional)
    return Decimal(q) * hour > rate_qty * (t1 - t0)


@dataclass(frozen=True)
class _Window:
    """The reading window in the ts unit: a reading after `latest` is a
    `future_reading`; one before `first[meter_id]` (an interval meter: whose
    interval starts before it) is an `ancient_reading`."""

    latest: int
    first: Mapping[str | int, int]


WINDOW_FIRST_DAY = dt.date(1900, 1, 1)  # UTC midnights: whatever the clock and tariffs,
WINDOW_END_DAY = dt.date(9000, 1, 1)  # readings are inside [first, end)


def _utc_midnight(day: dt.date, ups: int) -> int:
    return (dt.datetime.combine(day, dt.time(), UTC) - EPOCH) // dt.timedelta(seconds=1) * ups


def _first_priced(meter: Meter, registry: Registry, tariffs: Mapping[str, Tariff], site: Site,
                  ups: int) -> int:
    """The first local midnight of the first billing period in which the
    meter's tariff and its account's tariff both have a version in force
    (a period's version is the one in force on its first day)."""
    account = registry.accounts[meter.account_id]
    named = [t for t in (meter.tariff_id, account.tariff_id) if t is not None]
    day = max(tariffs[t].versions[0].effective_from for t in named)
    day = min(max(day, WINDOW_FIRST_DAY), WINDOW_END_DAY)
    period = _billing_period(day, registry.cycle_of(meter.account_id, site))
    start = period.start if period.start == day else period.end
    return max(_local_instant(start, 0, site.zone, ups), _utc_midnight(WINDOW_FIRST_DAY, ups))


def _window(now: dt.datetime | None, *, ups: int, site: Site, registry: Registry,
            tariffs: Mapping[str, Tariff]) -> _Window:
    """Rule 0's bounds; `now` None is the wall clock, naive is UTC."""
    if now is None:
        now = dt.datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now_units = (now - EPOCH) // dt.timedelta(microseconds=1) * ups // 10**6  # floor to the unit
    latest = min(now_units + site.future_tolerance_hours * 3600 * ups,
                 _utc_midnight(WINDOW_END_DAY, ups) - 1)
    first = {m.meter_id: _first_priced(m, registry, tariffs, site, ups) for m in registry.meters}
    return _Window(latest, first)


def _window_anomaly(meter: Meter, ts: int, window: _Window, ups: int) -> str | None:
    """Rule 0: later than now + tolerance -> future_reading; before the first
    priced period (an interval meter: its interval's start) -> ancient_reading."""
    if ts > window.latest:
        return "future_reading"
    start = ts - _interval_length(meter, ups) if meter.mode == "interval" else ts
    if start < window.first[meter.meter_id]:
        return "ancient_reading"
    return None


def _consume(
    readings: Sequence[RefReading], *, ups: int, site: Site, meters: Mapping[str | int, Meter],
    window: _Window,
) -> tuple[list[_Interval], list[RefAnomaly]]:
    """Rules 0-9 of "Meters and readings", reading by reading in arrival order."""
    states: dict[str | int, _MeterState] = {}
    intervals: list[_Interval] = []
    anomalies: list[RefAnomaly] = []

    def report(row: int, r: RefReading, code: str, delta: int | None = None) -> None:
        anomalies.append(
            RefAnomaly(
                row=row,
                meter_id=r.meter_id,
                ts=r.ts,
                code=code,
                delta=None if delta is None else _qty_decimal(delta, site),
                priced=code == "rollover",  # rollover rows are priced; no other code is
            )
        )

    for row, r in enumerate(readings):
        if r.meter_id is None or r.ts is None:  # malformed input is an error, not an anomaly
            raise InputError("meter_id and ts must not be null", where=f"reading row {row}")
        meter = meters.get(r.meter_id)
        if meter is None:  # a meter the registry does not know
            report(row, r, "unknown_meter")
            continue
        state = states.setdefault(r.meter_id, _MeterState())
        code = _window_anomaly(meter, r.ts, window, ups)
        if code:  # rule 0: never priced, never the meter's last reading
            report(row, r, code)
            continue
        if r.value is None:  # rule 1
            report(row, r, "null_value")
            continue
        value = _to_qty(r.value, site, row=row)
        code = _range_anomaly(meter, value, site) or _order_anomaly(state, r.ts, value)
        if code:  # rules 2-4
            report(row, r, code)
            continue
        rolled_over = False
        if meter.mode == "register":
            if not state.has_last:  # rule 5: the baseline, accepted, prices nothing
                state.last_ts, state.last_value, state.has_last = r.ts, value, True
                continue
            d, rolled_over = _register_delta(meter, state, value, site)
            if d < 0:  # rule 6: negative delta that is no rollover
                report(row, r, "negative_delta", d * meter.multiplier)
                continue
            t0 = state.last_ts
        else:  # rule 6, interval meters
            d = value
            t0 = r.ts - _interval_length(meter, ups)
        t1 = r.ts
        q = _consumption(d, meter)  # rule 7
        if _is_spike(meter, q, t0, t1, ups, site):  # rule 8
            # CHOICE: a rollover that is also a spike is reported once, as `spike`
            # (rejected, not priced); `rollover` rows always mean "priced".
            report(row, r, "spike", q)
            continue
        if rolled_over:  # rule 6: accepted and also reported
            report(row, r, "rollover", q)
        intervals.append(_Interval(meter, t0, t1, q))  # rule 9
        state.last_ts, state.last_value, state.has_last = r.ts, value, True
    return intervals, anomalies


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


def _local_instant(day: dt.date, minute: int, zone: ZoneInfo, ups: int) -> int:
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
class _Period:
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


def _billing_period(day: dt.date, cycle: Cycle) -> _Period:
    """A billing period runs from local midnight of the anchor day (1-28) to the
    same day of the next month; anchor 1 is the calendar month."""
    anchor = cycle.anchor_day
    if day.day >= anchor:
        year, month = day.year, day.month
    else:
        year, month = _add_month(day.year, day.month, -1)
    next_year, next_month = _add_month(year, month, 1)
    return _Period(dt.date(year, month, anchor), dt.date(next_year, next_month, anchor))


def _version(tariff: Tariff, period: _Period) -> TariffVersion:
    """The version in force on the period's first local day."""
    return tariff.version_on(period.start)


# --------------------------------------------------------------------------- #
# Splitting an interval over boundaries
# --------------------------------------------------------------------------- #

# A segment's label: its billing period and TOU period index.
_Label = tuple[_Period, int]


def _day_boundaries(
    day: dt.date, *, tariff: Tariff, cycle: Cycle, site: Site, zone: ZoneInfo, ups: int
) -> list[tuple[int, _Label]]:
    """The timeline points of one local day, in wall-clock order: its midnight
    and the starts of the TOU spans of the tariff version in force in its
    billing period. (Midnight is listed every day; an extra boundary where
    nothing changes does not change any part, the rounding being cumulative.)"""
    period = _billing_period(day, cycle)
    version = _version(tariff, period)
    midnight = _local_instant(day, 0, zone, ups)
    if version.tou is None:
        return [(midnight, (period, 0))]
    day_type = _day_type(day, site)
    points = [(midnight, (period, version.tou.period_at(day.month, day_type, 0)))]
    for start, _end, index in sorted(version.tou.day_spans(day.month, day_type)):
        points.append((_local_instant(day, start, zone, ups), (period, index)))
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
        if _local_instant(next_day, 0, zone, ups) > t0 and _local_instant(day, 0, zone, ups) < t1:
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


def _segments(
    interval: _Interval, *, tariff: Tariff, cycle: Cycle, site: Site, zone: ZoneInfo, ups: int
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


# --------------------------------------------------------------------------- #
# The charge of a billing period
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Charge:
    """A line before it is given its account, meter, tariff and period."""

    component: str
    tou_index: int | None
    tou_name: str | None
    slab: int | None
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal


def _round_money(value: Decimal, site: Site) -> Decimal:
    """Each line is rounded on its own to the minor unit with the site's rule
    (half_even, or half_up = half away from zero)."""
    amount = value.quantize(site.minor_unit, rounding=site.rounding_mode, context=_ROUNDING)
    if abs(amount.scaleb(site.minor_unit_exponent)) > INT64_MAX:
        raise AmountOverflowError(f"amount {amount} exceeds the int64 money range")
    return amount


def _slab_bounds(slabs: SlabSet, days: int, site: Site, *, tariff_id: str) -> list[int | None]:
    """Cumulative upper bounds in quantity units; `per_day` bounds are
    multiplied by the number of days of the billing period.
    CHOICE: a (scaled) bound finer than the quantity resolution, bounds that do
    not increase, or a last slab that is not open are a TariffError."""
    bounds: list[int | None] = []
    for i, bound in enumerate(slabs.bounds(days)):
        if bound is None:
            if i != len(slabs.slabs) - 1:
                raise TariffError("only the last slab may be open", where=f"tariff {tariff_id!r}")
            bounds.append(None)
            continue
        units = bound.scaleb(site.quantity_decimals)
        if units != units.to_integral_value():
            raise TariffError(
                f"slab bound {bound} is not a multiple of {site.quantity_unit}",
                where=f"tariff {tariff_id!r}",
            )
        if bounds and (bounds[-1] is None or int(units) <= bounds[-1]):
            raise TariffError("slab bounds must increase", where=f"tariff {tariff_id!r}")
        bounds.append(int(units))
    if not bounds or bounds[-1] is not None:
        raise TariffError(
            "the last slab must be open (no upper bound)", where=f"tariff {tariff_id!r}"
        )
    return bounds


def _slab_reached(total: int, bounds: Sequence[int | None]) -> int:
    """The 0-based slab `total` falls in: the first j with total <= u_j
    (a quantity equal to a bound belongs to that slab; 0 is in the first)."""
    for j, upper in enumerate(bounds):
        if upper is None or total <= upper:
            return j
    raise AssertionError("the last slab is open")


def _graduated_quantities(total: int, bounds: Sequence[int | None]) -> list[int]:
    """Graduated: slab j holds clamp(Q − u_j−1, 0, u_j − u_j−1)."""
    held = []
    lower = 0
    for upper in bounds:
        width = None if upper is None else upper - lower
        part = max(total - lower, 0)
        held.append(part if width is None else min(part, width))
        lower = upper if upper is not None else lower
    return held


def _volume_quantities(total: int, bounds: Sequence[int | None]) -> list[int]:
    """Volume: all of Q in the slab it reaches (the first j with Q <= u_j)."""
    held = [0] * len(bounds)
    held[_slab_reached(total, bounds)] = total
    return held


def _slab_quantities(slabs: SlabSet, total: int, bounds: Sequence[int | None]) -> list[int]:
    if slabs.mode == "graduated":
        return _graduated_quantities(total, bounds)
    if slabs.mode == "volume":
        return _volume_quantities(total, bounds)
    raise TariffError(f"unknown slab mode {slabs.mode!r}")


def _largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights` at the quantity resolution:
    floors first, then one unit each to the largest remainders, ties to the
    earlier TOU period."""
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        return [0] * len(weights)
    floors = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda k: (-remainders[k], k))
    for k in order[:left]:
        floors[k] += 1
    return floors


def _energy_line(
    qty: int, price: Decimal, *, slab: int | None, tou: tuple[int, str] | None, site: Site
) -> _Charge:
    """A line's amount is round(quantity × unit_price), computed exactly."""
    quantity = _qty_decimal(qty, site)
    return _Charge(
        component="energy",
        tou_index=None if tou is None else tou[0],
        tou_name=None if tou is None else tou[1],
        slab=slab,
        quantity=quantity,
        unit_price=price,
        amount=_round_money(quantity * price, site),
    )


def _slab_fee_line(
    slabs: SlabSet, total: int, bounds: Sequence[int | None], *, tou: tuple[int, str] | None,
    site: Site,
) -> list[_Charge]:
    """Slab fee: the fee of the slab Q falls in, once (Q = 0 is the first).
    CHOICE: no line when that slab's fee is 0. quantity and unit_price are None."""
    j = _slab_reached(total, bounds)
    fee = slabs.slabs[j].fee
    if fee == 0:
        return []
    return [
        _Charge(
            component="slab_fee",
            tou_index=None if tou is None else tou[0],
            tou_name=None if tou is None else tou[1],
            slab=j + 1,
            quantity=None,
            unit_price=None,
            amount=_round_money(fee, site),
        )
    ]


def _slab_lines(
    slabs: SlabSet, total: int, days: int, *, tou: tuple[int, str] | None, site: Site,
    tariff_id: str,
) -> list[_Charge]:
    """Energy over one slab set (graduated or volume): one line per slab holding
    a positive quantity, at that slab's price; then the slab fee."""
    bounds = _slab_bounds(slabs, days, site, tariff_id=tariff_id)
    held = _slab_quantities(slabs, total, bounds)
    lines = [
        _energy_line(qty, slab.price, slab=j + 1, tou=tou, site=site)
        for j, (qty, slab) in enumerate(zip(held, slabs.slabs, strict=True))
        if qty > 0
    ]
    return lines + _slab_fee_line(slabs, total, bounds, tou=tou, site=site)


def _tou_price_lines(version: TariffVersion, tou_qty: Sequence[int], site: Site) -> list[_Charge]:
    """TOU mode `price`: line q_k × price_k for each TOU period k.
    CHOICE: no line for a TOU period with q_k = 0 (like zero slab lines)."""
    assert version.tou is not None
    lines = []
    for k, period in enumerate(version.tou.periods):
        if period.price is None:
            raise TariffError(
                f"TOU period {period.name!r} has no price", where=f"tariff {version.tariff_id!r}"
            )
        if tou_qty[k] > 0:
            lines.append(
                _energy_line(tou_qty[k], period.price, slab=None, tou=(k, period.name), site=site)
            )
    return lines


def _tou_slabs_lines(
    version: TariffVersion, tou_qty: Sequence[int], days: int, site: Site
) -> list[_Charge]:
    """TOU mode `slabs`: each TOU period has its own slabs over its own q_k
    (and its own slab fee, on the slab q_k falls in)."""
    assert version.tou is not None
    lines = []
    for k, period in enumerate(version.tou.periods):
        if period.slabs is None:
            raise TariffError(
                f"TOU period {period.name!r} has no slabs", where=f"tariff {version.tariff_id!r}"
            )
        lines += _slab_lines(
            period.slabs, tou_qty[k], days, tou=(k, period.name), site=site,
            tariff_id=version.tariff_id,
        )
    return lines


def _tou_split_total_lines(
    version: TariffVersion, tou_qty: Sequence[int], days: int, site: Site
) -> list[_Charge]:
    """TOU mode `split_total`: the tariff's slabs apply to Q; each slab's
    quantity is split over the TOU periods in proportion to q_k (largest
    remainder), each part priced at slab price + adder_k. One line per
    (TOU period, slab) with a positive part; the slab fee on Q. A Q past
    int64 is an overflow error."""
    assert version.tou is not None
    slabs = version.energy
    if slabs is None:
        raise TariffError("split_total needs energy slabs", where=f"tariff {version.tariff_id!r}")
    total = sum(tou_qty)
    if total > INT64_MAX:  # Q is a quantity like any other: it must fit the int64 range
        raise AmountOverflowError(
            f"the period's total consumption {total} exceeds the int64 quantity range",
            where=f"tariff {version.tariff_id!r}",
        )
    bounds = _slab_bounds(slabs, days, site, tariff_id=version.tariff_id)
    held = _slab_quantities(slabs, total, bounds)
    lines = []
    for j, (slab_qty, slab) in enumerate(zip(held, slabs.slabs, strict=True)):
        shares = _largest_remainder(slab_qty, tou_qty)
        for k, part in enumerate(shares):
            if part > 0:
                period = version.tou.periods[k]
                adder = period.price if period.price is not None else Decimal(0)
                price = slab.price + adder
                lines.append(_energy_line(part, price, slab=j + 1, tou=(k, period.name), site=site))
    return lines + _slab_fee_line(slabs, total, bounds, tou=None, site=site)


def _energy_lines(
    version: TariffVersion, tou_qty: Sequence[int], days: int, site: Site
) -> list[_Charge]:
    """Energy and slab fee lines of one period. A version without TOU prices
    Q = q_0 over its slabs; one without energy slabs has no energy lines.
    CHOICE: with TOU mode `price` or `slabs`, `version.energy` is not used."""
    if version.tou is None:
        if version.energy is None:
            return []
        return _slab_lines(
            version.energy, tou_qty[0], days, tou=None, site=site, tariff_id=version.tariff_id
        )
    if version.tou.mode == "price":
        return _tou_price_lines(version, tou_qty, site)
    if version.tou.mode == "slabs":
        return _tou_slabs_lines(version, tou_qty, days, site)
    if version.tou.mode == "split_total":
        return _tou_split_total_lines(version, tou_qty, days, site)
    raise TariffError(
        f"unknown TOU mode {version.tou.mode!r}", where=f"tariff {version.tariff_id!r}"
    )


def _plain_line(component: str, amount: Decimal) -> _Charge:
    return _Charge(component, None, None, None, None, None, amount)


def _fixed_lines(version: TariffVersion, site: Site) -> list[_Charge]:
    """fixed_charge: its amount, once per touched period.
    CHOICE: a line whenever the tariff sets it (even to 0)."""
    if version.fixed_charge is None:
        return []
    return [_plain_line("fixed_charge", _round_money(version.fixed_charge, site))]


def _area_lines(version: TariffVersion, account: Account, site: Site) -> list[_Charge]:
    """area_charge: rate × account area; quantity = area, unit_price = rate.
    CHOICE: a line whenever the tariff sets a rate (even for area 0). The
    amount uses the exact area; the quantity column shows the area at the
    quantity resolution (rounded by the site's rule), as it is stored."""
    rate = version.area_charge_rate
    if rate is None:
        return []
    area = account.area_for(f"tariff {version.tariff_id} ({version.effective_from.isoformat()})")
    shown_area = area.quantize(site.quantity_unit, rounding=site.rounding_mode, context=_ROUNDING)
    return [
        _Charge(
            "area_charge", None, None, None, shown_area, rate,
            _round_money(area * rate, site),
        )
    ]


def _fee_lines(version: TariffVersion, site: Site) -> list[_Charge]:
    """Custom fees: a line `fee:<name>` per fee, in the tariff's order."""
    return [_plain_line(f"fee:{name}", _round_money(amount, site)) for name, amount in version.fees]


def _minimum_lines(version: TariffVersion, lines: Sequence[_Charge], site: Site) -> list[_Charge]:
    """minimum_charge: max(0, minimum − Σ named lines), by default over every
    line above; a line only when positive. The sum is of the rounded amounts.
    CHOICE: "positive" is judged on the rounded amount (no 0.00 line)."""
    if version.minimum_charge is None:
        return []
    named = version.minimum_on
    covered = sum(
        (ln.amount for ln in lines if named is None or ln.component in named), Decimal(0)
    )
    shortfall = version.minimum_charge - covered
    if shortfall <= 0:
        return []
    amount = _round_money(shortfall, site)
    return [_plain_line("minimum_charge", amount)] if amount > 0 else []


def _tax_lines(version: TariffVersion, lines: Sequence[_Charge], site: Site) -> list[_Charge]:
    """tax:<name> = round(percent / 100 × Σ amounts of the named components).
    CHOICE: a tax line per touched period even when its base is 0; a tax is
    never levied on another tax."""
    result = []
    for tax in version.taxes:
        base = sum((ln.amount for ln in lines if ln.component in tax.on), Decimal(0))
        result.append(_plain_line(f"tax:{tax.name}", _round_money(tax.percent * base / 100, site)))
    return result


def _period_charge(
    version: TariffVersion, tou_qty: Sequence[int], period: _Period, account: Account, site: Site
) -> list[_Charge]:
    """The charge of one billing period: a function of its TOU quantities."""
    lines = _energy_lines(version, tou_qty, period.days, site)
    lines += _fixed_lines(version, site)
    lines += _area_lines(version, account, site)
    lines += _fee_lines(version, site)
    lines += _minimum_lines(version, lines, site)
    lines += _tax_lines(version, lines, site)
    return lines


# --------------------------------------------------------------------------- #
# Putting it together
# --------------------------------------------------------------------------- #


def _component_rank(component: str, version: TariffVersion) -> tuple[int, int]:
    """energy, slab_fee, fixed_charge, area_charge, fee:* (tariff order),
    minimum_charge, tax:* (tariff order)."""
    fixed = {"energy": 0, "slab_fee": 1, "fixed_charge": 2, "area_charge": 3, "minimum_charge": 5}
    if component in fixed:
        return fixed[component], 0
    if component.startswith("fee:"):
        return 4, [f"fee:{name}" for name, _ in version.fees].index(component)
    if component.startswith("tax:"):
        return 6, [f"tax:{t.name}" for t in version.taxes].index(component)
    raise AssertionError(f"unknown component {component!r}")


def _line_key(line: RefLine, rank: tuple[int, int], tou_index: int | None) -> tuple:
    return (
        line.account_id,
        line.meter_id is None,
        "" if line.meter_id is None else line.meter_id,
        line.period_start,
        rank,
        -1 if tou_index is None else tou_index,
        0 if line.slab is None else line.slab,
    )


def _tariff(tariffs: Mapping[str, Tariff], tariff_id: str, where: str) -> Tariff:
    if tariff_id not in tariffs:
        raise TariffError(f"unknown tariff {tariff_id!r}", where=where)
    return tariffs[tariff_id]


def reference_rate(
    readings: Sequence[RefReading],
    *,
    ts_unit: str,
    site: Site,
    registry: Registry,
    tariffs: Mapping[str, Tariff],
    now: dt.datetime | None = None,
) -> tuple[list[RefLine], list[RefAnomaly]]:
    """Rate readings (in arrival order, from empty meter state): the charge
    lines of every touched period, and one anomaly row per rejected (or
    rolled-over) reading. `now` is the reading window's now (the wall clock
    when None; naive is UTC)."""
    if ts_unit not in UNITS_PER_SECOND:
        raise InputError(f"ts unit must be one of {sorted(UNITS_PER_SECOND)}, got {ts_unit!r}")
    ups = UNITS_PER_SECOND[ts_unit]
    zone = site.zone
    meters = {m.meter_id: m for m in registry.meters}
    # An unknown tariff in the registry is an error, whether or not it is used
    # (CHOICE: checked up front, so the result never depends on which meters read).
    for m in registry.meters:
        _tariff(tariffs, m.tariff_id, f"meter {m.meter_id!r}")
    for a in registry.accounts.values():
        if a.tariff_id is not None:
            _tariff(tariffs, a.tariff_id, f"account {a.account_id!r}")

    with localcontext(_EXACT):
        window = _window(now, ups=ups, site=site, registry=registry, tariffs=tariffs)
        intervals, anomalies = _consume(readings, ups=ups, site=site, meters=meters, window=window)

        # Each part goes to the bucket (meter, billing period, tou period); a
        # (meter, billing period) with any segment of an accepted interval is touched.
        # CHOICE: "touched" is judged per segment, not per part: a long interval
        # touches every billing period it crosses even where its floor-rounded
        # part is 0 (the meter was read across that period, so it is billed).
        buckets: dict[tuple[str | int, _Period], dict[int, int]] = {}
        for interval in intervals:
            meter = interval.meter
            for (period, tou_index), part in _segments(
                interval,
                tariff=tariffs[meter.tariff_id],
                cycle=registry.cycle_of(meter.account_id, site),
                site=site,
                zone=zone,
                ups=ups,
            ):
                bucket = buckets.setdefault((meter.meter_id, period), {})
                bucket[tou_index] = bucket.get(tou_index, 0) + part
                if bucket[tou_index] > INT64_MAX:
                    raise AmountOverflowError(
                        "period consumption exceeds the int64 quantity range",
                        where=f"meter {meter.meter_id!r}",
                    )

        keyed: list[tuple[tuple, RefLine]] = []

        def emit(account: Account, meter_id, tariff: Tariff, period: _Period, tou_qty) -> None:
            version = _version(tariff, period)
            for c in _period_charge(version, tou_qty, period, account, site):
                line = RefLine(
                    account_id=account.account_id,
                    meter_id=meter_id,
                    tariff_id=tariff.id,
                    period_start=period.start,
                    period_end=period.last_day,
                    component=c.component,
                    tou_period=c.tou_name,
                    slab=c.slab,
                    quantity=c.quantity,
                    unit_price=c.unit_price,
                    amount=c.amount,
                )
                rank = _component_rank(c.component, version)
                keyed.append((_line_key(line, rank, c.tou_index), line))

        # Meter tariffs: per touched (meter, billing period).
        account_periods: set[tuple[str, _Period]] = set()
        for (meter_id, period), bucket in buckets.items():
            meter = meters[meter_id]
            tariff = tariffs[meter.tariff_id]
            version = _version(tariff, period)
            tou_qty = [bucket.get(k, 0) for k in range(version.tou_count)]
            emit(registry.accounts[meter.account_id], meter_id, tariff, period, tou_qty)
            account_periods.add((meter.account_id, period))

        # Account tariffs: once per (account, billing period) with a touched
        # meter period, with no consumption of their own and no meter_id.
        # CHOICE: they are priced as the charge of all-zero TOU quantities, so an
        # account tariff with energy slabs gets no energy line but would get the
        # first slab's fee (Q = 0 is in the first slab).
        for account_id, period in account_periods:
            account = registry.accounts[account_id]
            if account.tariff_id is not None:
                tariff = tariffs[account.tariff_id]
                emit(account, None, tariff, period, [0] * _version(tariff, period).tou_count)

    keyed.sort(key=lambda pair: pair[0])
    return [line for _, line in keyed], anomalies


__all__ = ["RefAnomaly", "RefLine", "RefReading", "reference_rate"]

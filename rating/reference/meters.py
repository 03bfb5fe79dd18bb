"""Rules 0-9 of "Meters and readings": per-meter state, reading by reading in arrival order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    Decimal,
)

from rating.errors import AmountOverflowError, InputError
from rating.model.registry import Meter, Registry
from rating.model.site import Site
from rating.model.tariff import Tariff
from rating.reference.calendar import billing_period, local_instant
from rating.reference.records import EPOCH, INT64_MAX, UTC, Interval, RefAnomaly, RefReading

# --------------------------------------------------------------------------- #
# Consumption: per-meter state in arrival order ("Meters and readings")
# --------------------------------------------------------------------------- #


@dataclass
class _MeterState:
    """`(last_ts, last_value, has_last)`; only an accepted reading moves it."""

    last_ts: int = 0
    last_value: int = 0
    has_last: bool = False


def _to_qty(value: Decimal, site: Site, *, row: int) -> int:
    """A reading value as an integer count of the quantity unit; quantizing
    is the edge's job, so a finer value is an InputError here."""
    units = value.scaleb(site.quantity_decimals)
    if units != units.to_integral_value():
        raise InputError(
            f"value {value} is not a multiple of {site.quantity_unit}", where=f"reading row {row}"
        )
    return int(units)


def qty_decimal(qty: int, site: Site) -> Decimal:
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
    period = billing_period(day, registry.cycle_of(meter.account_id, site))
    start = period.start if period.start == day else period.end
    return max(local_instant(start, 0, site.zone, ups), _utc_midnight(WINDOW_FIRST_DAY, ups))


def reading_window(now: dt.datetime | None, *, ups: int, site: Site, registry: Registry,
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


def consume(
    readings: Sequence[RefReading], *, ups: int, site: Site, meters: Mapping[str | int, Meter],
    window: _Window,
) -> tuple[list[Interval], list[RefAnomaly]]:
    """Rules 0-9 of "Meters and readings", reading by reading in arrival order."""
    states: dict[str | int, _MeterState] = {}
    intervals: list[Interval] = []
    anomalies: list[RefAnomaly] = []
    for row, r in enumerate(readings):
        if r.meter_id is None or r.ts is None:  # malformed input is an error, not an anomaly
            raise InputError("meter_id and ts must not be null", where=f"reading row {row}")
        meter = meters.get(r.meter_id)
        code: str | None
        delta: int | None
        if meter is None:  # a meter the registry does not know
            code, delta = "unknown_meter", None
        else:
            state = states.setdefault(r.meter_id, _MeterState())
            code, delta = _judge(r, row, meter, state, window, intervals, ups=ups, site=site)
        if code:
            anomalies.append(RefAnomaly(
                row=row, meter_id=r.meter_id, ts=r.ts, code=code,
                delta=None if delta is None else qty_decimal(delta, site),
                priced=code == "rollover",  # rollover rows are priced; no other code is
            ))
    return intervals, anomalies


def _judge(r: RefReading, row: int, meter: Meter, state: _MeterState, window: _Window,
           intervals: list[Interval], *, ups: int, site: Site) -> tuple[str | None, int | None]:
    """Rules 0-9 for one reading of a known meter: its anomaly code (None if
    none) and delta; an accepted reading's interval is appended to `intervals`
    and it becomes the meter's last reading."""
    code = _window_anomaly(meter, r.ts, window, ups)
    if code:  # rule 0: never priced, never the meter's last reading
        return code, None
    if r.value is None:  # rule 1
        return "null_value", None
    value = _to_qty(r.value, site, row=row)
    code = _range_anomaly(meter, value, site) or _order_anomaly(state, r.ts, value)
    if code:  # rules 2-4
        return code, None
    rolled_over = False
    if meter.mode == "register":
        if not state.has_last:  # rule 5: the baseline, accepted, prices nothing
            state.last_ts, state.last_value, state.has_last = r.ts, value, True
            return None, None
        d, rolled_over = _register_delta(meter, state, value, site)
        if d < 0:  # rule 6: negative delta that is no rollover
            return "negative_delta", d * meter.multiplier
        t0 = state.last_ts
    else:  # rule 6, interval meters
        d = value
        t0 = r.ts - _interval_length(meter, ups)
    q = _consumption(d, meter)  # rule 7
    if _is_spike(meter, q, t0, r.ts, ups, site):  # rule 8
        # CHOICE: a rollover that is also a spike is reported once, as `spike`
        # (rejected, not priced); `rollover` rows always mean "priced".
        return "spike", q
    intervals.append(Interval(meter, t0, r.ts, q))  # rule 9
    state.last_ts, state.last_value, state.has_last = r.ts, value, True
    return ("rollover", q) if rolled_over else (None, None)  # rule 6: accepted and also reported



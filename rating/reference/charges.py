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

with components in the order energy, slab_fee, package, export, fixed_charge, area_charge,
fee:<name> (in the tariff's order), minimum_charge, tax:<name> (in the
tariff's order). Anomalies are returned in input (row) order, at most one per
reading.

Choices where the contract is silent are marked `CHOICE:` below.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import localcontext

from rating.errors import AmountOverflowError, InputError, TariffError
from rating.model.registry import Account, Registry
from rating.model.site import Site
from rating.model.tariff import Tariff, TariffVersion
from rating.reference.calendar import Period, segments, version_in_force
from rating.reference.meters import consume, reading_window
from rating.reference.period_charge import period_charge
from rating.reference.periods import active_days, asked_periods, outside_anomalies
from rating.reference.records import (
    EXACT,
    INT64_MAX,
    UNITS_PER_SECOND,
    Interval,
    RefAnomaly,
    RefLine,
    RefReading,
)

# --------------------------------------------------------------------------- #
# Putting it together
# --------------------------------------------------------------------------- #


def _component_rank(component: str, version: TariffVersion) -> tuple[int, int]:
    """energy, slab_fee, package, export, fixed_charge, area_charge, fee:*
    (tariff order), minimum_charge, tax:* (tariff order)."""
    fixed = {"energy": 0, "slab_fee": 1, "package": 2, "export": 3, "fixed_charge": 4, "area_charge": 5,
             "minimum_charge": 7}
    if component in fixed:
        return fixed[component], 0
    if component.startswith("fee:"):
        return 6, [f"fee:{name}" for name, _ in version.fees].index(component)
    if component.startswith("tax:"):
        return 8, [f"tax:{t.name}" for t in version.taxes].index(component)
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
    months: Sequence[dt.date] | None = None,
) -> tuple[list[RefLine], list[RefAnomaly]]:
    """Rate readings (in arrival order, from empty meter state): the charge
    lines of every touched period, and one anomaly row per rejected (or
    rolled-over) reading. `now` is the reading window's now (the wall clock
    when None; naive is UTC). `months` (first days, consecutive) asks for
    those periods only, every active meter and account charged in each."""
    if ts_unit not in UNITS_PER_SECOND:
        raise InputError(f"ts unit must be one of {sorted(UNITS_PER_SECOND)}, got {ts_unit!r}")
    ups = UNITS_PER_SECOND[ts_unit]
    _check_tariffs(registry, tariffs)
    with localcontext(EXACT):
        window = reading_window(now, ups=ups, site=site, registry=registry, tariffs=tariffs)
        meters = {m.meter_id: m for m in registry.meters}
        intervals, anomalies = consume(readings, ups=ups, site=site, meters=meters, window=window)
        buckets = _buckets(intervals, ups=ups, site=site, registry=registry, tariffs=tariffs)
        asked: set[tuple[str, Period]] = set()
        if months is not None:
            anomalies = outside_anomalies(readings, anomalies, meters=meters, accounts=registry.accounts,
                                          months=months, site=site, ups=ups)
            every = {(a.account_id, p) for a in registry.accounts.values()
                     for p in asked_periods(months, a, site)}
            asked = {(a, p) for a, p in every if active_days(p, registry.accounts[a]) > 0}
            buckets = _asked_buckets(buckets, every, registry)
        keyed = _lines(buckets, site=site, registry=registry, tariffs=tariffs, asked=asked)
    keyed.sort(key=lambda pair: pair[0])
    return [line for _, line in keyed], anomalies


def _check_tariffs(registry: Registry, tariffs: Mapping[str, Tariff]) -> None:
    """An unknown tariff in the registry is an error, whether or not it is used
    (CHOICE: checked up front, so the result never depends on which meters read)."""
    for m in registry.meters:
        _tariff(tariffs, m.tariff_id, f"meter {m.meter_id!r}")
    for a in registry.accounts.values():
        if a.tariff_id is not None:
            _tariff(tariffs, a.tariff_id, f"account {a.account_id!r}")


_Buckets = dict[tuple[str | int, Period], dict[int, int]]


def _buckets(intervals: Sequence[Interval], *, ups: int, site: Site, registry: Registry,
             tariffs: Mapping[str, Tariff]) -> _Buckets:
    """Each part goes to the bucket (meter, billing period, tou period); a
    (meter, billing period) with any segment of an accepted interval is touched.
    CHOICE: "touched" is judged per segment, not per part: a long interval
    touches every billing period it crosses even where its floor-rounded
    part is 0 (the meter was read across that period, so it is billed)."""
    buckets: _Buckets = {}
    for interval in intervals:
        meter = interval.meter
        for (period, tou_index), part in segments(
            interval,
            tariff=tariffs[meter.tariff_id],
            cycle=registry.cycle_of(meter.account_id, site),
            site=site,
            zone=site.zone,
            ups=ups,
        ):
            bucket = buckets.setdefault((meter.meter_id, period), {})
            bucket[tou_index] = bucket.get(tou_index, 0) + part
            if bucket[tou_index] > INT64_MAX:
                raise AmountOverflowError(
                    "period consumption exceeds the int64 quantity range",
                    where=f"meter {meter.meter_id!r}",
                )
    return buckets


def _asked_buckets(buckets: _Buckets, asked: set[tuple[str, Period]], registry: Registry) -> _Buckets:
    """The buckets of the asked periods (CHOICE: those of days a meter is not
    active too: its readings are charged), and an empty one for every meter
    active in an asked period of its account that no reading touched."""
    meters = {m.meter_id: m for m in registry.meters}
    kept = {key: b for key, b in buckets.items() if (meters[key[0]].account_id, key[1]) in asked}
    for account_id, period in asked:
        account = registry.accounts[account_id]
        for meter in registry.meters:
            if meter.account_id == account_id and active_days(period, meter, account) > 0:
                kept.setdefault((meter.meter_id, period), {})
    return kept


def _lines(buckets: _Buckets, *, site: Site, registry: Registry, tariffs: Mapping[str, Tariff],
           asked: set[tuple[str, Period]]) -> list[tuple[tuple, RefLine]]:
    """The lines of every touched (meter, period), then of the account tariffs
    (once per account period with a touched meter period, or asked), each with
    its sort key."""
    keyed: list[tuple[tuple, RefLine]] = []
    meters = {m.meter_id: m for m in registry.meters}
    account_periods: set[tuple[str, Period]] = set(asked)
    for (meter_id, period), bucket in buckets.items():
        meter = meters[meter_id]
        tariff = tariffs[meter.tariff_id]
        account = registry.accounts[meter.account_id]
        tou_qty = [bucket.get(k, 0) for k in range(version_in_force(tariff, period).tou_count)]
        keyed += _period_lines(account, meter_id, tariff, period, tou_qty, site,
                               active_days(period, meter, account))
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
            zeros = [0] * version_in_force(tariff, period).tou_count
            keyed += _period_lines(account, None, tariff, period, zeros, site, active_days(period, account))
    return keyed


def _period_lines(account: Account, meter_id, tariff: Tariff, period: Period, tou_qty, site: Site,
                  active: int) -> list[tuple[tuple, RefLine]]:
    """The lines of one period; CHOICE: a period touched by readings on days
    its meter or account is not active (active = 0) is charged whole."""
    version = version_in_force(tariff, period)
    keyed = []
    for c in period_charge(version, tou_qty, period, account, site, active or None):
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
        keyed.append((_line_key(line, _component_rank(c.component, version), c.tou_index), line))
    return keyed


__all__ = ["RefAnomaly", "RefLine", "RefReading", "reference_rate"]

"""Consumption analytics from rate()'s charges: per unit, tower and common
area, per utility, month over month, outliers and anomaly counts
(docs/reports.md, "Consumption").

A meter's metered quantity in a period is its `energy` lines' quantities
less its quantity-basis `shared_area` lines (a share added before pricing
is not the unit's own use; a netted source meter gets its use back), so
the figures are what the meters measured, whatever the groups did. The
utility is the meter's unit (registry), else its tariff's unit. A month is
the month of the period's first day.

Outliers, with the median and the MAD (median absolute deviation) of a set
of quantities: a quantity is an outlier when |q - median| > 3.5 MAD,
  - `own`: against the same unit's and utility's months (3 or more),
  - `tower`: against the units of its tower with that utility in that
    month (5 or more).
A set whose MAD is zero flags nothing. All of it is exact (integers of the
quantity's smallest step); the scores (deviation / MAD) are 2-place Decimals.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal

import pyarrow as pa
import pyarrow.compute as pc

from rating.config.loader import Config
from rating.errors import InputError

TOWER_PATTERN = r"^([A-Za-z]+)-"  # A-0101 -> A: group 1 (or the whole match) names the tower
OWN_MONTHS_MIN = 3
TOWER_UNITS_MIN = 5
SCORE = Decimal("0.01")
RATIO = Decimal("0.0001")


def tower_rule(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InputError(f"not a regular expression: {pattern!r} ({exc})", where="--tower-pattern") from None


def tower_of(rule: re.Pattern, account_id: str) -> str | None:
    found = rule.search(account_id)
    if found is None:
        return None
    return found.group(1) if rule.groups else found.group(0)


def metered(charges: pa.Table) -> dict[tuple[str, str | int, str], Decimal]:
    """(account, meter, month) -> what the meter measured (see the module's doc)."""
    energy = charges.filter(pc.equal(charges["component"], "energy"))
    parts = [energy.select(["account_id", "meter_id", "period_start", "quantity"])]
    if "basis" in charges.column_names:
        moved = charges.filter(pc.and_kleene(pc.equal(charges["component"], "shared_area"),
                                             pc.equal(charges["basis"], "quantity")))
        moved = moved.filter(pc.is_valid(moved["meter_id"]))
        parts.append(moved.select(["account_id", "meter_id", "period_start"]).append_column(
            "quantity", pc.negate(moved["quantity"])))
    lines = pa.concat_tables(parts)
    sums = lines.group_by(["account_id", "meter_id", "period_start"]).aggregate([("quantity", "sum")])
    out: dict = {}
    for row in sums.to_pylist():
        out[(row["account_id"], row["meter_id"], _month(row["period_start"]))] = row["quantity_sum"]
    return out


def utilities(config: Config) -> dict[str | int, str]:
    """meter id -> its utility: the meter's unit, else its tariff's, else the tariff id."""
    out = {}
    for meter in config.registry.meters:
        tariff = config.tariffs.get(meter.tariff_id)
        unit = meter.unit or (tariff.versions[-1].unit if tariff is not None else "")
        out[meter.meter_id] = unit or meter.tariff_id
    return out


def anomaly_counts(anomalies: pa.Table, config: Config) -> dict[tuple[str, str, str], int]:
    """(account, utility, month) -> anomalies of its meters, by the reading's local month."""
    owner = {m.meter_id: m.account_id for m in config.registry.meters}
    utility = utilities(config)
    zone = config.site.zone
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for meter, ts in zip(anomalies["meter_id"].to_pylist(), anomalies["ts"].to_pylist(), strict=True):
        if meter in owner and ts is not None:
            counts[(owner[meter], utility[meter], _month(ts.astimezone(zone).date()))] += 1
    return counts


def common_accounts(config: Config) -> set[str]:
    """The accounts that own a shared-area group's source meters."""
    owner = {m.meter_id: m.account_id for m in config.registry.meters}
    return {owner[m] for m in source_meters(config) if m in owner}


def source_meters(config: Config) -> dict[str | int, str]:
    """source meter -> its group (common meters and master meters)."""
    out: dict[str | int, str] = {}
    for group in (config.groups.groups if config.groups is not None else ()):
        master = () if group.master_meter is None else (group.master_meter,)
        for meter in (*group.common_meters, *master):
            out.setdefault(meter, group.group_id)
    return out


def mad_scores(values: list[int]) -> list[tuple[Decimal | None, bool]]:
    """Each value's (|v - median| / MAD signed, 2 places; beyond 3.5 MADs), exact:
    with m2 = 2 median and d4 = 4 MAD, the score is 2 (2v - m2) / d4."""
    ordered = sorted(values)
    lo, hi = (len(values) - 1) // 2, len(values) // 2
    twice_median = ordered[lo] + ordered[hi]
    deviations = [abs(2 * v - twice_median) for v in values]
    spread = sorted(deviations)
    four_mad = spread[lo] + spread[hi]
    if four_mad == 0:
        return [(None, False)] * len(values)
    # |v - median| > 3.5 MAD  <=>  d / 2 > 3.5 d4 / 4  <=>  4 d > 7 d4
    return [((Decimal(2 * (2 * v - twice_median)) / four_mad).quantize(SCORE, ROUND_HALF_EVEN),
             4 * d > 7 * four_mad)
            for v, d in zip(values, deviations, strict=True)]


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year - 1:04d}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"


def change_of(quantity: Decimal, before: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    """(quantity - before, that / before to 4 places); None where there is no before (or it is 0)."""
    if before is None:
        return None, None
    change = quantity - before
    return change, (change / before).quantize(RATIO, ROUND_HALF_EVEN) if before else None

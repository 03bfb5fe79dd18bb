"""Exact pricing of billing periods: TOU quantities in, charge lines out.

Implements "The charge of a billing period" of docs/semantics.md. The periods
priced on one tariff version are priced together with numpy in int64 fixed
point: quantities in 10^-quantity_decimals units, prices in 10^-6 currency
units (`_micro`), amounts in minor units (`_minor`). A product that could
leave int64 is computed with Python integers instead, so every result is
exact or an `AmountOverflowError`, never wrapped. docs/tariffs.md says which
lines are emitted and in which order. `rows` lays out what to price, `version`
prices the rows of one tariff version, `lines` assembles the charge lines,
`exact` holds the integer kernels.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from rating.consumption.quantities import AccountPeriods, PeriodQuantities
from rating.model.registry import Registry
from rating.model.site import Site
from rating.model.tariff import Tariff
from rating.pricing.lines import LineAmounts, Lines
from rating.pricing.rows import Rows
from rating.pricing.version import Pricer


def price_periods(
    periods: PeriodQuantities, *, registry: Registry, tariffs: Mapping[str, Tariff], site: Site,
    accounts: AccountPeriods | None = None,
) -> pa.Table:
    """Charge lines (`rating.schema.charges_schema`) of every touched meter
    period, and of every account's own tariff once per touched account period
    (and per period of `accounts`)."""
    rows, lines = _price(periods, registry, tariffs, site, accounts)
    return lines.table(rows, site)


def price_line_amounts(
    periods: PeriodQuantities, *, registry: Registry, tariffs: Mapping[str, Tariff], site: Site
) -> LineAmounts:
    """The amounts of the lines `price_periods` lists, without building its
    table: for callers that only sum them (prepaid deductions, per batch)."""
    rows, lines = _price(periods, registry, tariffs, site)
    return lines.amounts(rows)


def _price(periods: PeriodQuantities, registry: Registry, tariffs: Mapping[str, Tariff],
           site: Site, accounts: AccountPeriods | None = None) -> tuple[Rows, Lines]:
    _check_periods(periods, len(registry))
    rows = Rows.build(periods, registry, tariffs, accounts)
    lines = Lines()
    pricer = Pricer(site, rows, lines)
    for version, group in rows.version_groups(tariffs):
        pricer.price(version, group)
    return rows, lines


def _check_periods(periods: PeriodQuantities, meter_count: int) -> None:
    """The engine's own invariants: a failure is a bug upstream, not bad input."""
    n = len(periods.meter_index)
    if periods.qty.ndim != 2 or periods.qty.shape[0] != n:
        raise ValueError(f"qty must have shape (n, T) with n = {n}, got {periods.qty.shape}")
    if len(periods.period_start) != n or len(periods.period_end) != n:
        raise ValueError("meter_index, period_start and period_end must have the same length")
    if n == 0:
        return
    if periods.meter_index.min() < 0 or periods.meter_index.max() >= meter_count:
        raise ValueError("meter_index outside the registry")
    if (periods.period_end <= periods.period_start).any():
        raise ValueError("every period must end after it starts")
    if (periods.qty < 0).any():
        raise ValueError("quantities must not be negative")



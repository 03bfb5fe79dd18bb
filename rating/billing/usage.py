"""The rated lines of a site (`rating.engine.rate()`'s charges table) as each
account's usage for its bill (`UsageLine`), amounts in minor units."""

from __future__ import annotations

import itertools

import pyarrow as pa

from rating.billing.documents import SharePart, UsageLine
from rating.fixedpoint import decimal_units
from rating.site import Site


def usage_by_account(charges: pa.Table, site: Site) -> dict[str, list[UsageLine]]:
    """Each account's lines, in the table's order. Shared-area lines (the
    columns of rating.apportion.shared_lines_schema) carry their share;
    a source meter's offsetting line carries it too, so it lands on the
    same share head with the opposite sign."""
    amounts, _ = decimal_units(charges["amount"], site.minor_unit_exponent)
    columns = {name: charges[name].to_pylist() for name in
               ("account_id", "meter_id", "tariff_id", "component", "period_start", "period_end",
                "quantity", "tou_period", "slab")}
    shared = "group_id" in charges.column_names
    shares = _shares(charges) if shared else itertools.repeat(None)
    by_account: dict[str, list[UsageLine]] = {}
    rows = zip(*columns.values(), amounts.tolist(), shares, strict=False)
    for account, meter, tariff, component, start, end, quantity, tou, slab, amount, share in rows:
        line = UsageLine(meter, tariff, component, start, end, quantity, amount, tou or "", slab, share)
        by_account.setdefault(account, []).append(line)
    return by_account


def _shares(charges: pa.Table) -> list[SharePart | None]:
    groups, methods = charges["group_id"].to_pylist(), charges["method"].to_pylist()
    weights, totals = charges["weight"].to_pylist(), charges["weight_total"].to_pylist()
    return [None if group is None else SharePart(group, method, weight, total)
            for group, method, weight, total in zip(groups, methods, weights, totals, strict=True)]

"""The consumption tables (rating.reports.consumption has the rules): one
row per unit, utility and month; the towers' and the common areas' sums."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pyarrow as pa

from rating.config.loader import Config
from rating.reports import consumption as c


def _schema(decimals: int, keys: list[tuple[str, pa.DataType]], extra: list[tuple[str, pa.DataType]]):
    quantity = pa.decimal128(38, decimals)
    return pa.schema([*keys, ("utility", pa.string()), ("month", pa.string()), ("quantity", quantity),
                      ("change", quantity), ("change_ratio", pa.decimal128(38, 4)), *extra])


def units(charges: pa.Table, anomalies: pa.Table, config: Config, *,
          tower_pattern: str = c.TOWER_PATTERN) -> pa.Table:
    """Per (account, utility, month): metered quantity, its change on the month
    before, anomalies, and the own and tower outlier scores."""
    rule = c.tower_rule(tower_pattern)
    utility = c.utilities(config)
    common = c.common_accounts(config)
    totals: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for (account, meter, month), quantity in c.metered(charges).items():
        totals[(account, utility.get(meter, "?"), month)] += quantity
    counts = c.anomaly_counts(anomalies, config)
    keys = sorted(totals)
    step = config.site.quantity_unit
    steps = {k: int(totals[k] / step) for k in keys}
    own = _scored(keys, steps, lambda k: (k[0], k[1]), c.OWN_MONTHS_MIN)
    tower = {k: c.tower_of(rule, k[0]) if k[0] not in common else None for k in keys}
    peers = _scored([k for k in keys if tower[k] is not None], steps, lambda k: (tower[k], k[1], k[2]),
                    c.TOWER_UNITS_MIN)
    rows = []
    for k in keys:
        change, ratio = c.change_of(totals[k], totals.get((k[0], k[1], c.previous_month(k[2]))))
        rows.append({"account_id": k[0], "tower": tower[k], "area": "common" if k[0] in common else "unit",
                     "utility": k[1], "month": k[2], "quantity": totals[k], "change": change,
                     "change_ratio": ratio, "anomalies": counts.get(k, 0),
                     "own_score": own.get(k, (None, False))[0], "own_outlier": own.get(k, (None, False))[1],
                     "tower_score": peers.get(k, (None, False))[0],
                     "tower_outlier": peers.get(k, (None, False))[1]})
    return pa.Table.from_pylist(rows, schema=UNIT_SCHEMA(config.site.quantity_decimals))


def UNIT_SCHEMA(decimals: int) -> pa.Schema:  # noqa: N802 - a schema, by its decimals
    score = pa.decimal128(38, 2)
    return _schema(decimals, [("account_id", pa.string()), ("tower", pa.string()), ("area", pa.string())],
                   [("anomalies", pa.int64()), ("own_score", score), ("own_outlier", pa.bool_()),
                    ("tower_score", score), ("tower_outlier", pa.bool_())])


def _scored(keys, steps, set_of, size_min: int) -> dict:
    """key -> (score, outlier) within its set (set_of(key)); sets under size_min are not scored."""
    sets: dict = defaultdict(list)
    for k in keys:
        sets[set_of(k)].append(k)
    out: dict = {}
    for members in sets.values():
        if len(members) >= size_min:
            out.update(zip(members, c.mad_scores([steps[k] for k in members]), strict=True))
    return out


def towers(unit_table: pa.Table, decimals: int) -> pa.Table:
    """Per (tower, utility, month) over its units (common areas apart)."""
    sums: dict[tuple, list] = {}
    for r in unit_table.to_pylist():
        if r["tower"] is None:
            continue
        s = sums.setdefault((r["tower"], r["utility"], r["month"]), [0, Decimal(0), 0, 0])
        s[0] += 1
        s[1] += r["quantity"]
        s[2] += r["anomalies"]
        s[3] += bool(r["own_outlier"] or r["tower_outlier"])
    rows = []
    for (tower, utility, month), (n, quantity, anomalies, outliers) in sorted(sums.items()):
        before = sums.get((tower, utility, c.previous_month(month)))
        change, ratio = c.change_of(quantity, before[1] if before else None)
        rows.append({"tower": tower, "units": n, "utility": utility, "month": month, "quantity": quantity,
                     "change": change, "change_ratio": ratio, "anomalies": anomalies, "outliers": outliers})
    keys = [("tower", pa.string()), ("units", pa.int64())]
    return pa.Table.from_pylist(rows, schema=_schema(decimals, keys, [("anomalies", pa.int64()),
                                                                      ("outliers", pa.int64())]))


def common_areas(charges: pa.Table, config: Config) -> pa.Table:
    """Per (group, source meter, month): what the shared area's meter measured."""
    groups = c.source_meters(config)
    utility = c.utilities(config)
    found = {k: q for k, q in c.metered(charges).items() if k[1] in groups}
    rows = []
    for account, meter, month in sorted(found, key=lambda k: (groups[k[1]], str(k[1]), k[2])):
        quantity = found[(account, meter, month)]
        change, ratio = c.change_of(quantity, found.get((account, meter, c.previous_month(month))))
        rows.append({"group_id": groups[meter], "meter_id": str(meter), "account_id": account,
                     "utility": utility.get(meter, "?"), "month": month, "quantity": quantity,
                     "change": change, "change_ratio": ratio})
    keys = [("group_id", pa.string()), ("meter_id", pa.string()), ("account_id", pa.string())]
    return pa.Table.from_pylist(rows, schema=_schema(config.site.quantity_decimals, keys, []))

"""Collection KPIs per cycle (docs/reports.md states each formula).

A cycle's window runs from its bill date to the day before the next
cycle's bill date (the last cycle's: to the as-of day). For cycle c:

    billed      the totals of its bills, cancelled bills left out
    arrears     receivable at the end of the day before its bill date
    collected   receipts received in the window, less reversals dated in it
    efficiency  collected / (billed + arrears)
    on_time     bills paid in full by their due date + `grace_days` / bills
    late        bills paid in full after that, by the as-of day / bills
    dso         receivable at the window's end / billed x days of the window

where receivable on a day is, per account, owed minus credit when above
zero (rating.reports.ageing), and "bills" are the cycle's bills with a
positive total that were not cancelled. Ratios are Decimal quantized to
4 places, days sales outstanding to 1, half-even; `*_change` is the
difference from the cycle before.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pyarrow as pa

from rating.reports.facts import Facts, credit_balances, item_balances

RATIO = Decimal("0.0001")
DAYS = Decimal("0.1")
RATIOS = ("efficiency", "on_time", "late", "dso")
SCHEMA = pa.schema([("cycle_id", pa.string()), ("bill_date", pa.date32()), ("window_end", pa.date32()),
                    ("bills", pa.int64()), ("billed_minor", pa.int64()), ("arrears_minor", pa.int64()),
                    ("collected_minor", pa.int64()), ("receivable_end_minor", pa.int64()),
                    ("on_time_bills", pa.int64()), ("late_bills", pa.int64())]
                   + [(k, pa.decimal128(38, 4)) for k in RATIOS]
                   + [(f"{k}_change", pa.decimal128(38, 4)) for k in RATIOS])


@dataclass(frozen=True)
class CycleBills:
    cycle_id: str
    bill_date: dt.date
    window_end: dt.date
    bills: tuple[tuple, ...]  # ReportRows.bills rows, not cancelled


def ratio(numerator: int, denominator: int, quantum: Decimal = RATIO) -> Decimal | None:
    if denominator == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(quantum, rounding=ROUND_HALF_EVEN)


def cycles_of(bills: list[tuple], as_of: dt.date) -> list[CycleBills]:
    """The cycles billed by `as_of`, in bill date order, with their windows."""
    by_cycle: dict[str, list[tuple]] = {}
    for bill in bills:
        if bill[3] <= as_of:
            by_cycle.setdefault(bill[2], []).append(bill)
    ordered = sorted(by_cycle.items(), key=lambda kv: (min(b[3] for b in kv[1]), kv[0]))
    starts = [min(b[3] for b in group) for _, group in ordered]
    ends = [s - dt.timedelta(days=1) for s in starts[1:]] + [as_of]
    return [CycleBills(c, s, e, tuple(b for b in group if not b[6]))
            for (c, group), s, e in zip(ordered, starts, ends[:len(starts)], strict=True)]


def receivable(facts: Facts, day: dt.date) -> int:
    """Sum over accounts of max(0, owed - credit) at the end of `day`."""
    d = day.toordinal()
    balance = item_balances(facts, d)
    per_account = np.zeros(len(facts.accounts), np.int64)
    np.add.at(per_account, facts.item_account, balance)  # owed minus credit notes
    per_account -= credit_balances(facts, d)
    return int(np.maximum(per_account, 0).sum())


def collected(facts: Facts, first: dt.date, last: dt.date) -> int:
    a, b = first.toordinal(), last.toordinal()
    got = facts.receipt_amount[(facts.receipt_on >= a) & (facts.receipt_on <= b)].sum()
    back = facts.receipt_amount[(facts.receipt_back >= a) & (facts.receipt_back <= b)].sum()
    return int(got) - int(back)


def settled_by(facts: Facts, bills: tuple[tuple, ...], days: list[int]) -> list[bool]:
    """Whether each bill's own items were paid in full by the end of its day."""
    ref_of = {r: i for i, r in enumerate(facts.refs)}
    cutoff = np.full(len(facts.refs), -1, np.int64)
    for bill, day in zip(bills, days, strict=True):
        cutoff[ref_of[bill[0]]] = day
    counted = facts.entry_on <= cutoff[facts.entry_ref] if len(facts.entry_ref) else np.zeros(0, bool)
    owed = np.zeros(len(facts.refs), np.int64)
    np.add.at(owed, facts.entry_ref[counted], facts.entry_amount[counted])
    return [bool(owed[ref_of[b[0]]] <= 0) for b in bills]


def kpis(facts: Facts, as_of: dt.date, *, grace_days: int = 0) -> pa.Table:
    rows = []
    for cycle in cycles_of(facts.rows.bills, as_of):
        counted = tuple(b for b in cycle.bills if b[5] > 0)
        on_time = settled_by(facts, counted, [(b[4] + dt.timedelta(days=grace_days)).toordinal()
                                              for b in counted])
        by_now = settled_by(facts, counted, [as_of.toordinal()] * len(counted))
        arrears = receivable(facts, cycle.bill_date - dt.timedelta(days=1))
        rows.append(_row(cycle, counted, on_time, by_now, arrears,
                         collected(facts, cycle.bill_date, cycle.window_end),
                         receivable(facts, cycle.window_end)))
    return table(rows)


def _row(cycle: CycleBills, counted, on_time: list[bool], by_now: list[bool], arrears: int, got: int,
         end: int) -> dict:
    billed = sum(b[5] for b in cycle.bills)
    n, punctual = len(counted), sum(on_time)
    late = sum(1 for t, s in zip(on_time, by_now, strict=True) if s and not t)
    days = (cycle.window_end - cycle.bill_date).days + 1
    return {"cycle_id": cycle.cycle_id, "bill_date": cycle.bill_date, "window_end": cycle.window_end,
            "bills": n, "billed_minor": billed, "arrears_minor": arrears, "collected_minor": got,
            "receivable_end_minor": end, "on_time_bills": punctual, "late_bills": late,
            "efficiency": ratio(got, billed + arrears), "on_time": ratio(punctual, n), "late": ratio(late, n),
            "dso": ratio(end * days, billed, DAYS)}


def table(rows: list[dict]) -> pa.Table:
    """The rows with each KPI's change from the cycle before."""
    previous: dict | None = None
    for row in rows:
        for k in RATIOS:
            before = previous and previous[k]
            row[f"{k}_change"] = None if before is None or row[k] is None else row[k] - before
        previous = row
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def trend(kpi_table: pa.Table, name: str) -> Decimal | None:
    """Least-squares slope of a KPI per cycle (exact, then 4 places half-even); None under 2 points."""
    points = [(i, v) for i, v in enumerate(kpi_table[name].to_pylist()) if v is not None]
    if len(points) < 2:
        return None
    n = len(points)
    sx, sy = sum(x for x, _ in points), sum(y for _, y in points)
    sxx, sxy = sum(x * x for x, _ in points), sum(x * y for x, y in points)
    return ((n * sxy - sx * sy) / (n * sxx - sx * sx)).quantize(RATIO, rounding=ROUND_HALF_EVEN)

"""The cash-flow forecast: expected collections by week of the next cycles,
from each account's own payment history, back-tested on the past cycles.

Method (docs/reports.md). A cycle's weeks count from its bill date: week 1
its days 0-6, ..., week 5 its days 28 to the window's end. For each account
and week w, its share s(w) = what it paid in week w of its last `depth`
cycles (receipts, reversed ones left out) / what those cycles billed it.
Its expected collection in week w of a coming cycle is its last bill x s(w),
rounded half-up to the minor unit per account; a week's forecast is the sum
over accounts. So a habitual late payer's money lands in the weeks it
usually pays in, a defaulter's nowhere, an advance payer's in week 1 of
the cycle it paid ahead in, and arrears paid with later bills count too.
Coming cycles are one cycle length apart (the median number of days between
past bill dates) and expected the same: the method has no seasonality.

The back-test forecasts each past cycle that has `depth` cycles before it
from those cycles alone and sets the forecast beside what came in:
error = |forecast - actual| / actual of the cycle's total (Decimal, 4
places, half-even), and its mean over the tested cycles.
"""

from __future__ import annotations

import datetime as dt
import statistics
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pyarrow as pa

from rating.reports.facts import NEVER, Facts
from rating.reports.kpis import RATIO, CycleBills, cycles_of, ratio

WEEKS = 5
DEPTH = 6
FORECAST_SCHEMA = pa.schema([("cycle", pa.int64()), ("week", pa.int64()), ("week_start", pa.date32()),
                             ("expected_minor", pa.int64())])
BACKTEST_SCHEMA = pa.schema([("cycle_id", pa.string()), ("forecast_minor", pa.int64()),
                             ("actual_minor", pa.int64()), ("error", pa.decimal128(38, 4))])


def history(facts: Facts, cycles: list[CycleBills]) -> tuple[np.ndarray, np.ndarray]:
    """(billed[account, cycle], paid[account, cycle, week]), minor units."""
    n = len(facts.accounts)
    billed = np.zeros((n, len(cycles)), np.int64)
    paid = np.zeros((n, len(cycles), WEEKS), np.int64)
    index = {a: i for i, a in enumerate(facts.accounts)}
    kept = facts.receipt_back == NEVER
    for c, cycle in enumerate(cycles):
        for bill in cycle.bills:
            billed[index[bill[1]], c] += bill[5]
        a, b = cycle.bill_date.toordinal(), cycle.window_end.toordinal()
        mask = (facts.receipt_on >= a) & (facts.receipt_on <= b) & kept
        week = np.minimum((facts.receipt_on[mask] - a) // 7, WEEKS - 1)
        np.add.at(paid, (facts.receipt_account[mask], c, week), facts.receipt_amount[mask])
    return billed, paid


def expected(billed: np.ndarray, paid: np.ndarray, upto: int, depth: int = DEPTH) -> np.ndarray:
    """Per week, the sum over accounts of last bill x share, for the cycle after `upto` cycles."""
    first = max(0, upto - depth)
    billed_sum = billed[:, first:upto].sum(axis=1)
    paid_sum = paid[:, first:upto, :].sum(axis=1)
    last = billed[:, upto - 1]
    has = billed_sum > 0
    numerator = last[has, None] * paid_sum[has]  # < 2^62: a bill and a payment under 10^15 / depth
    denominator = billed_sum[has, None]
    return ((2 * numerator + denominator) // (2 * denominator)).sum(axis=0).astype(np.int64)


def forecast(facts: Facts, as_of: dt.date, *, cycles_ahead: int = 2, depth: int = DEPTH) -> pa.Table:
    past = cycles_of(facts.rows.bills, as_of)
    if not past:
        return FORECAST_SCHEMA.empty_table()
    billed, paid = history(facts, past)
    weekly = expected(billed, paid, len(past), depth)
    starts = [c.bill_date for c in past]
    step = int(statistics.median([(b - a).days for a, b in zip(starts, starts[1:], strict=False)] or [30]))
    rows = [{"cycle": k, "week": w + 1, "week_start": starts[-1] + dt.timedelta(days=step * k + 7 * w),
             "expected_minor": int(weekly[w])} for k in range(1, cycles_ahead + 1) for w in range(WEEKS)]
    return pa.Table.from_pylist(rows, schema=FORECAST_SCHEMA)


def backtest(facts: Facts, as_of: dt.date, *, depth: int = DEPTH) -> tuple[pa.Table, Decimal | None]:
    """Each past cycle with `depth` cycles before it, forecast and actual; the mean error."""
    past = cycles_of(facts.rows.bills, as_of)
    billed, paid = history(facts, past)
    rows = []
    for c in range(depth, len(past)):
        predicted = int(expected(billed, paid, c, depth).sum())
        actual = int(paid[:, c, :].sum())
        rows.append({"cycle_id": past[c].cycle_id, "forecast_minor": predicted, "actual_minor": actual,
                     "error": ratio(abs(predicted - actual), actual)})
    errors = [e for e in (r["error"] for r in rows) if isinstance(e, Decimal)]
    if not errors:
        return pa.Table.from_pylist(rows, schema=BACKTEST_SCHEMA), None
    mean = (sum(errors, Decimal(0)) / len(errors)).quantize(RATIO, rounding=ROUND_HALF_EVEN)
    return pa.Table.from_pylist(rows, schema=BACKTEST_SCHEMA), mean

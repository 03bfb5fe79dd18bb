"""The ageing and KPI reports as plain loops over the ledger's rows: slow,
obviously what docs/reports.md says. The array versions (rating.reports.ageing,
rating.reports.kpis) must give the same tables (tests/test_reports_reference.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from rating.billing.ledger import ReportRows
from rating.reports.ageing import BUCKETS
from rating.reports.kpis import DAYS, cycles_of, ratio, table


def item_balances(rows: ReportRows, as_of: dt.date) -> dict[tuple, int]:
    """(account, ref, due, interest) -> its entries on or before `as_of`."""
    items: dict[tuple, int] = {}
    for account, ref, due, interest, on, amount in rows.entries:
        key = (account, ref, due, interest)
        items[key] = items.get(key, 0) + (amount if on <= as_of else 0)
    return items


def credits(rows: ReportRows, as_of: dt.date) -> dict[str, int]:
    found: dict[str, int] = {}
    for account, on, amount in rows.credits:
        if on <= as_of:
            found[account] = found.get(account, 0) + amount
    return found


def column_of(age: int) -> int:
    if age < 0:
        return 0
    if age <= 30:
        return 1
    if age <= 60:
        return 2
    return 3 if age <= 90 else 4


def accounts_of(rows: ReportRows) -> set[str]:
    return ({r[0] for r in rows.entries} | {r[0] for r in rows.credits} | {r[0] for r in rows.receipts}
            | {r[1] for r in rows.bills})


@dataclass
class _Owed:
    columns: list[int] = field(default_factory=lambda: [0] * 5)
    principal: int = 0
    interest: int = 0
    credit: int = 0
    oldest: dt.date | None = None


def ageing(rows: ReportRows, as_of: dt.date, *, every_account: bool = False) -> list[tuple]:
    """The rows of rating.reports.ageing.ageing, as tuples in COLUMNS order."""
    money = {a: _Owed() for a in accounts_of(rows)}
    for (account, _, due, interest), balance in item_balances(rows, as_of).items():
        m = money[account]
        if balance > 0:
            age = (as_of - due).days
            m.columns[column_of(age)] += balance
            if interest:
                m.interest += balance
            else:
                m.principal += balance
            if age >= 0 and (m.oldest is None or due < m.oldest):
                m.oldest = due
        else:
            m.credit -= balance
    for account, amount in credits(rows, as_of).items():
        money[account].credit += amount
    out = []
    for account, m in money.items():
        overdue = sum(m.columns[1:])
        if overdue > 0 or every_account:
            days = (as_of - m.oldest).days if m.oldest else 0
            out.append((account, *m.columns, overdue, m.principal, m.interest, m.credit,
                        m.principal + m.interest - m.credit, m.oldest, days))
    return sorted(out, key=lambda r: (-r[len(BUCKETS) + 1], r[0]))


def receivable(rows: ReportRows, day: dt.date) -> int:
    per_account: dict[str, int] = {}
    for (account, *_), balance in item_balances(rows, day).items():
        per_account[account] = per_account.get(account, 0) + balance
    for account, amount in credits(rows, day).items():
        per_account[account] = per_account.get(account, 0) - amount
    return sum(v for v in per_account.values() if v > 0)


def bill_owed(rows: ReportRows, number: str, day: dt.date) -> int:
    return sum(amount for _, ref, _, _, on, amount in rows.entries if ref == number and on <= day)


def kpis(rows: ReportRows, as_of: dt.date, *, grace_days: int = 0) -> list[dict]:
    out = []
    for cycle in cycles_of(rows.bills, as_of):
        billed = sum(b[5] for b in cycle.bills)
        counted = [b for b in cycle.bills if b[5] > 0]
        on_time = late = 0
        for bill in counted:
            if bill_owed(rows, bill[0], bill[4] + dt.timedelta(days=grace_days)) <= 0:
                on_time += 1
            elif bill_owed(rows, bill[0], as_of) <= 0:
                late += 1
        got = 0
        for _, _, _, on, amount, back in rows.receipts:
            got += amount if cycle.bill_date <= on <= cycle.window_end else 0
            got -= amount if back is not None and cycle.bill_date <= back <= cycle.window_end else 0
        arrears = receivable(rows, cycle.bill_date - dt.timedelta(days=1))
        end = receivable(rows, cycle.window_end)
        days = (cycle.window_end - cycle.bill_date).days + 1
        out.append({"cycle_id": cycle.cycle_id, "bill_date": cycle.bill_date, "window_end": cycle.window_end,
                    "bills": len(counted), "billed_minor": billed, "arrears_minor": arrears,
                    "collected_minor": got, "receivable_end_minor": end, "on_time_bills": on_time,
                    "late_bills": late, "efficiency": ratio(got, billed + arrears),
                    "on_time": ratio(on_time, len(counted)), "late": ratio(late, len(counted)),
                    "dso": ratio(end * days, billed, DAYS)})
    return table(out).to_pylist()

"""Defaulters with ageing, as of a day: what each account owes, by how long
past its due date, principal and interest apart.

An item is what one bill (or note, or imported due) raised under one due
date, principal or interest: its balance at the end of the as-of day is the
sum of its entries dated on or before it (payments by the day they were
received). An item with a positive balance is owed, in the column of its
age, `as_of - due_date` in days:

    not yet due  age < 0     0-30  0..30     31-60  31..60
    61-90        61..90      90+   91 and more

An item with a negative balance (a credit note not yet set against a due)
and the account's unallocated money (advances) are its `credit`. `net` is
owed minus credit. A defaulter is an account with something overdue (age
0 or more). The plain loops of rating.reports.reference define the same
table; tests/test_reports_reference.py holds the two equal.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from rating.errors import InputError
from rating.reports.facts import Facts, credit_balances, item_balances

BUCKETS = ("not_yet_due_minor", "d0_30_minor", "d31_60_minor", "d61_90_minor", "d90_plus_minor")
BOUNDS_DAYS = (0, 31, 61, 91)  # an age below the first is not yet due; from the last: 90+
COLUMNS = ("account_id", *BUCKETS, "overdue_minor", "principal_minor", "interest_minor", "credit_minor",
           "net_minor", "oldest_due", "days_overdue")
SCHEMA = pa.schema([("account_id", pa.string())] + [(c, pa.int64()) for c in COLUMNS[1:-2]]
                   + [("oldest_due", pa.date32()), ("days_overdue", pa.int64())])


def bucket_of(age_days: np.ndarray) -> np.ndarray:
    """The column (0 = not yet due .. 4 = 90+) of each age."""
    return np.searchsorted(np.array(BOUNDS_DAYS), age_days, side="right")


def check_account(facts: Facts, account_id: str) -> None:
    if account_id and facts.account_index(account_id) < 0:
        raise InputError(f"no account {account_id!r} in the dues ledger of site {facts.site_id!r}",
                         where="account", reason="NOT_FOUND")


def ageing(facts: Facts, as_of: dt.date, *, every_account: bool = False, account_id: str = "") -> pa.Table:
    """One row per defaulter (or per account of the ledger), most overdue
    first; `account_id` (refused when unknown) keeps that account's row."""
    check_account(facts, account_id)
    day = as_of.toordinal()
    balance = item_balances(facts, day)
    n = len(facts.accounts)
    owed = balance > 0
    columns = np.zeros((n, len(BUCKETS)), dtype=np.int64)
    np.add.at(columns, (facts.item_account[owed], bucket_of(day - facts.item_due[owed])), balance[owed])
    principal, interest = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for out, mask in ((principal, owed & ~facts.item_interest), (interest, owed & facts.item_interest)):
        np.add.at(out, facts.item_account[mask], balance[mask])
    credit = credit_balances(facts, day)
    negative = balance < 0
    np.add.at(credit, facts.item_account[negative], -balance[negative])
    late = owed & (facts.item_due <= day)
    oldest = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(oldest, facts.item_account[late], facts.item_due[late])
    overdue = columns[:, 1:].sum(axis=1)
    keep = np.ones(n, bool) if every_account else overdue > 0
    if account_id:
        keep &= np.array([a == account_id for a in facts.accounts], dtype=bool)
    chosen = np.flatnonzero(keep)
    chosen = chosen[np.lexsort((chosen, -overdue[chosen]))]
    has_oldest = overdue[chosen] > 0
    oldest_days = np.where(has_oldest, oldest[chosen], 0)
    return pa.table([
        pa.array([facts.accounts[i] for i in chosen], pa.string()),
        *[pa.array(columns[chosen, k]) for k in range(len(BUCKETS))],
        pa.array(overdue[chosen]), pa.array(principal[chosen]), pa.array(interest[chosen]),
        pa.array(credit[chosen]), pa.array(principal[chosen] + interest[chosen] - credit[chosen]),
        pa.array([dt.date.fromordinal(int(d)) if h else None for d, h in zip(oldest_days, has_oldest,
                                                                            strict=True)], pa.date32()),
        pa.array(np.where(has_oldest, day - oldest_days, 0)),
    ], schema=SCHEMA)


def totals(table: pa.Table) -> dict[str, int]:
    """The money columns summed (exact: Python integers)."""
    return {c: sum(table[c].to_pylist()) for c in COLUMNS[1:-2]}

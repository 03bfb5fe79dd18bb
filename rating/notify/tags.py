"""Owner tags computed from each account's bills and what is still open on them.

A site maps tags to a tone (`[tones]` of reminders.toml); staff tags
(rating.notify.directory) are added to these. The tags and what earns them:

- `new_owner`: the account's first bill is at most `new_owner_days` old;
- `long_tenure`: its first bill is at least `long_tenure_years` old;
- `habitual_late`: at least `late_bills_min` past-due bills were (or are) paid late;
- `partial_payer`: a bill is part paid, part still open;
- `on_time`: at least `history_bills_min` past-due bills, none late;
- `early_payer`: as on_time, every one paid `early_days` or more before its due date;
- `prefers_offline`: most paid bills were paid offline (cash, cheque, transfer).

The day and the means of each payment (`BillHistory.paid_on`, `.offline`)
come from the allocations of the ledger's payments (`histories`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from rating.billing.ledger_payment_types import AllocationRow, Payment


@dataclass(frozen=True)
class TagRules:
    long_tenure_years: int = 5
    new_owner_days: int = 180
    late_bills_min: int = 2
    history_bills_min: int = 3
    early_days: int = 5


@dataclass(frozen=True)
class BillHistory:
    issued_on: dt.date
    due_date: dt.date
    total_minor: int  # what the bill added to the dues
    open_minor: int  # what of it is still owed
    paid_on: dt.date | None = None  # the day it was paid in full, when known
    offline: bool | None = None  # paid offline, when known


def owner_tags(bills: Sequence[BillHistory], today: dt.date, rules: TagRules = TagRules()) -> frozenset[str]:
    if not bills:
        return frozenset()
    tags = set()
    first = min(b.issued_on for b in bills)
    if (today - first).days <= rules.new_owner_days:
        tags.add("new_owner")
    if years_between(first, today) >= rules.long_tenure_years:
        tags.add("long_tenure")
    past = [b for b in bills if b.due_date < today and b.total_minor > 0]
    late = [b for b in past if b.open_minor > 0 or (b.paid_on is not None and b.paid_on > b.due_date)]
    if len(late) >= rules.late_bills_min:
        tags.add("habitual_late")
    if any(0 < b.open_minor < b.total_minor for b in bills):
        tags.add("partial_payer")
    if len(past) >= rules.history_bills_min and not late:
        tags.add("on_time")
        early = dt.timedelta(days=rules.early_days)
        if all(b.paid_on is not None and b.paid_on <= b.due_date - early for b in past):
            tags.add("early_payer")
    paid = [b for b in bills if b.offline is not None and b.open_minor <= 0]
    if paid and 2 * sum(1 for b in paid if b.offline) > len(paid):
        tags.add("prefers_offline")
    return frozenset(tags)


def years_between(first: dt.date, today: dt.date) -> int:
    years = today.year - first.year
    return years - 1 if (today.month, today.day) < (first.month, first.day) else years


class BillLike(Protocol):  # rating.notify.bills.Bill, as read for the planner
    @property
    def number(self) -> str: ...

    @property
    def account_id(self) -> str: ...

    @property
    def issued_on(self) -> dt.date: ...

    @property
    def due_date(self) -> dt.date: ...

    @property
    def total_minor(self) -> int: ...


def histories(bills: Iterable[BillLike], open_minor: Mapping[str, int],
              allocations: Iterable[AllocationRow] = (), payments: Iterable[Payment] = (),
              ) -> dict[str, list[BillHistory]]:
    """Per account, the history of its bills: what is still open on each (by
    bill number), and, from the allocations of its payments, the day a settled
    bill was last paid and whether offline (cash, cheque, transfer)."""
    offline_receipts = {p.receipt for p in payments if p.method != "gateway"}
    paid_on: dict[str, dt.date] = {}
    offline: dict[str, bool] = {}
    for row in allocations:
        if row.amount_minor > 0 and row.receipt:
            paid_on[row.bill_ref] = max(row.on, paid_on.get(row.bill_ref, row.on))
            offline[row.bill_ref] = offline.get(row.bill_ref, False) or row.receipt in offline_receipts
    found: dict[str, list[BillHistory]] = {}
    for bill in bills:
        owed = open_minor.get(bill.number, 0)
        settled = owed <= 0 and bill.number in paid_on
        found.setdefault(bill.account_id, []).append(BillHistory(
            bill.issued_on, bill.due_date, bill.total_minor, owed, paid_on[bill.number] if settled else None,
            offline.get(bill.number)))
    return found

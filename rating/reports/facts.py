"""The dues ledger's rows of one site as arrays, read once for every report.

`load(ledger, site_id)` reads `DuesLedger.report_rows` and indexes it:
accounts and bill references as small integers, days as ordinals (so "on or
before the as-of day" is one comparison), entries sorted by their item
(account, bill, due date, principal or interest) so an item's balance on
any day is one masked `np.add.reduceat`. Amounts stay int64 minor units;
`check_sums` refuses a ledger whose sums could leave int64 (then nothing is
computed, rather than wrapped).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from rating.billing.ledger import DuesLedger, ReportRows
from rating.errors import AmountOverflowError as _Overflow

NEVER = dt.date.max.toordinal()  # a receipt never reversed
INT64_SAFE = 2**62


@dataclass(frozen=True)
class Facts:
    site_id: str
    rows: ReportRows  # as read: the reference reads these
    accounts: tuple[str, ...]  # sorted
    refs: tuple[str, ...]
    # items: one per (account, ref, due date, interest)
    item_account: np.ndarray  # int64 index into accounts
    item_ref: np.ndarray
    item_due: np.ndarray  # ordinal days
    item_interest: np.ndarray  # bool
    # entries, sorted by item; item i's entries are entry_on[starts[i]:starts[i + 1]]
    starts: np.ndarray
    entry_on: np.ndarray
    entry_amount: np.ndarray
    entry_ref: np.ndarray  # the entry's ref index (its item's), for per-bill sums
    credit_account: np.ndarray
    credit_on: np.ndarray
    credit_amount: np.ndarray
    receipt_account: np.ndarray
    receipt_method: np.ndarray  # str objects
    receipt_on: np.ndarray
    receipt_amount: np.ndarray
    receipt_back: np.ndarray  # ordinal of the reversal, NEVER if none

    def account_index(self, account_id: str) -> int:
        i = int(np.searchsorted(np.array(self.accounts, dtype=object), account_id)) if self.accounts else 0
        return i if i < len(self.accounts) and self.accounts[i] == account_id else -1


async def load(ledger: DuesLedger, site_id: str) -> Facts:
    return index(site_id, await ledger.report_rows(site_id))


def index(site_id: str, rows: ReportRows) -> Facts:
    """The rows as arrays (pure)."""
    accounts = tuple(sorted({r[0] for r in rows.entries} | {r[0] for r in rows.credits}
                            | {r[0] for r in rows.receipts} | {r[1] for r in rows.bills}))
    account_of = {a: i for i, a in enumerate(accounts)}
    ref_of: dict[str, int] = {}
    item_of: dict[tuple, int] = {}
    items: list[tuple[int, int, int, int]] = []
    entry_item, entry_on, entry_amount = [], [], []
    for account, ref, due, interest, on, amount in rows.entries:
        r = ref_of.setdefault(ref, len(ref_of))
        key = (account_of[account], r, due.toordinal(), interest)
        i = item_of.get(key)
        if i is None:
            i = item_of[key] = len(items)
            items.append(key)
        entry_item.append(i)
        entry_on.append(on.toordinal())
        entry_amount.append(amount)
    for bill in rows.bills:
        ref_of.setdefault(bill[0], len(ref_of))
    order = np.argsort(np.array(entry_item, dtype=np.int64), kind="stable")
    sorted_items = np.array(entry_item, dtype=np.int64)[order]
    starts = np.searchsorted(sorted_items, np.arange(len(items)))
    item = np.array(items, dtype=np.int64).reshape(-1, 4)
    amounts = np.array(entry_amount, dtype=np.int64)[order]
    check_sums(amounts, "dues entries")
    credits = rows.credits
    receipts = rows.receipts
    return Facts(
        site_id, rows, accounts, tuple(ref_of), item[:, 0], item[:, 1], item[:, 2], item[:, 3].astype(bool),
        starts, np.array(entry_on, dtype=np.int64)[order], amounts, item[sorted_items, 1] if len(items) else
        np.zeros(0, np.int64),
        _codes([c[0] for c in credits], account_of), _days([c[1] for c in credits]),
        _money([c[2] for c in credits], "credits"),
        _codes([r[0] for r in receipts], account_of), np.array([r[2] for r in receipts], dtype=object),
        _days([r[3] for r in receipts]), _money([r[4] for r in receipts], "receipts"),
        np.array([NEVER if r[5] is None else r[5].toordinal() for r in receipts], dtype=np.int64))


def item_balances(facts: Facts, day: int) -> np.ndarray:
    """Each item's balance at the end of `day` (ordinal): its entries on or before it."""
    if len(facts.starts) == 0:
        return np.zeros(0, dtype=np.int64)
    counted = np.where(facts.entry_on <= day, facts.entry_amount, 0)
    return np.add.reduceat(counted, facts.starts)


def credit_balances(facts: Facts, day: int) -> np.ndarray:
    """Each account's unallocated money at the end of `day`."""
    out = np.zeros(len(facts.accounts), dtype=np.int64)
    mask = facts.credit_on <= day
    np.add.at(out, facts.credit_account[mask], facts.credit_amount[mask])
    return out


def check_sums(amounts: np.ndarray, what: str) -> None:
    """Refuse amounts whose sum could leave int64 (every sum here is of a subset)."""
    if len(amounts) and int(np.abs(amounts).max()) * len(amounts) >= INT64_SAFE:
        raise _Overflow(f"the {what} could sum past 2^62 minor units; the reports refuse to round or wrap",
                        where=what)


def _codes(values: list[str], code_of: dict[str, int]) -> np.ndarray:
    return np.array([code_of[v] for v in values], dtype=np.int64)


def _days(values: list[dt.date]) -> np.ndarray:
    return np.array([v.toordinal() for v in values], dtype=np.int64)


def _money(values: list[int], what: str) -> np.ndarray:
    array = np.array(values, dtype=np.int64)
    check_sums(array, what)
    return array

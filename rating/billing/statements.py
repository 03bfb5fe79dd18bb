"""A statement of account for a date range: the opening balance, every
entry of the range, the closing balance.

Read from the dues ledger's entries (`DuesLedger.account_entries`), so it
shows every kind of entry the ledger holds, those that come later too
(payments): entries are grouped into one row per (operation, document,
kind of line), a bill giving a row for its charges, one for its interest,
one for its taxes. An entry counts on its document's date, or, without a
document, on the day its operation was written. The opening balance is
the sum of the entries before the first day, the closing balance the
opening plus the rows: over all days it is the ledger's balance of the
account. Beside the rows, `paid` says what paid what in the range: each
allocation of a payment (or of a credit note) to a bill's head, as the
ledger recorded it (an undone one negative). As a table (Arrow; CSV) and as
HTML and PDF (rating.billing.render).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pyarrow as pa

from rating.billing.ledger import AccountEntry, DuesLedger
from rating.errors import InputError

# What a row says by the kind of its entries; an unknown kind shows as itself.
KIND_TEXT = {"charge": "Charges", "interest": "Interest", "late_fee": "Late fee", "tax": "Taxes",
             "rounding": "Rounding off", "arrears": "Arrears"}
OP_TEXT = {"issue": "Bill", "note": "Note", "cancel": "Cancellation", "import": "Imported dues"}
RANGE_DAYS_MAX = 366 * 20


@dataclass(frozen=True)
class StatementRow:
    on: dt.date
    reference: str  # the document, or the operation's reference
    kind: str  # the entries' kind (charge, interest, tax, ..., payment)
    description: str
    amount_minor: int  # owed (> 0) or credited (< 0)
    balance_minor: int  # after this row
    heads: tuple[str, ...]


@dataclass(frozen=True)
class PaidLine:
    """`amount_minor` of `bill`'s `head` paid on `on` by `payer` (a receipt, or
    `<note>:<head>` of a credit)."""

    on: dt.date
    payer: str
    bill: str
    head: str
    amount_minor: int  # negative: a reversal undid it


@dataclass(frozen=True)
class Statement:
    site_id: str
    account_id: str
    first: dt.date
    last: dt.date
    opening_minor: int
    rows: tuple[StatementRow, ...]
    paid: tuple[PaidLine, ...] = ()

    @property
    def closing_minor(self) -> int:
        return self.rows[-1].balance_minor if self.rows else self.opening_minor


def check_range(first: dt.date, last: dt.date) -> None:
    if last < first:
        raise InputError(f"the range ends ({last}) before it starts ({first})", where="date range")
    if (last - first).days > RANGE_DAYS_MAX:
        raise InputError(f"a statement covers at most {RANGE_DAYS_MAX} days", where="date range")


async def statement(ledger: DuesLedger, site_id: str, account_id: str, first: dt.date,
                    last: dt.date) -> Statement:
    """The account's statement from `first` to `last`, both days included."""
    check_range(first, last)
    entries = await ledger.account_entries(site_id, account_id)
    found = build(site_id, account_id, first, last, entries)
    paid = tuple(PaidLine(a.on, a.receipt or a.credit_ref, a.bill_ref, a.head, a.amount_minor)
                 for a in await ledger.allocations(site_id, account_id) if first <= a.on <= last)
    return replace(found, paid=paid)


def build(site_id: str, account_id: str, first: dt.date, last: dt.date,
          entries: list[AccountEntry]) -> Statement:
    """The statement of these entries (pure)."""
    opening = sum(e.amount_minor for e in entries if e.on < first)
    groups: dict[tuple[int, str, str], list[AccountEntry]] = {}
    for entry in entries:
        if first <= entry.on <= last:
            groups.setdefault((entry.seq, entry.document, entry.kind), []).append(entry)
    rows, balance = [], opening
    for (_, document, kind), items in sorted(groups.items(), key=lambda g: (g[1][0].on, g[0])):
        amount = sum(item.amount_minor for item in items)
        balance += amount
        one = items[0]
        heads = tuple(dict.fromkeys(item.head for item in items))
        rows.append(StatementRow(one.on, document or one.ref, kind, _description(one, kind), amount, balance,
                                 heads))
    return Statement(site_id, account_id, first, last, opening, tuple(rows))


def _description(entry: AccountEntry, kind: str) -> str:
    what = OP_TEXT.get(entry.op_kind, entry.op_kind.replace("_", " ").capitalize())
    return f"{what}: {KIND_TEXT.get(kind, kind.replace('_', ' '))}"


STATEMENT_SCHEMA = pa.schema([("on", pa.date32()), ("reference", pa.string()), ("kind", pa.string()),
                              ("description", pa.string()), ("heads", pa.string()),
                              ("amount_minor", pa.int64()), ("balance_minor", pa.int64()),
                              ("paid_by", pa.string()), ("paid_minor", pa.int64())])


def statement_table(found: Statement) -> pa.Table:
    """The rows as Arrow, the opening balance first (reference `opening`),
    the closing next (`closing`), amounts in minor units; then what paid what,
    one row per allocation (kind `allocation`, reference the bill, `paid_by`
    the receipt, `paid_minor` the amount; its `amount_minor` 0 and
    `balance_minor` empty: the balance rows above already count the money)."""
    opening = [(found.first, "opening", "balance", "Opening balance", "", 0, found.opening_minor, "", 0)]
    rows = [(r.on, r.reference, r.kind, r.description, " ".join(r.heads), r.amount_minor, r.balance_minor, "",
             0) for r in found.rows]
    closing = [(found.last, "closing", "balance", "Closing balance", "", 0, found.closing_minor, "", 0)]
    paid = [(p.on, p.bill, "allocation", f"{p.payer} paid {p.bill} {p.head}", p.head, 0, None, p.payer,
             p.amount_minor) for p in found.paid]
    columns = list(zip(*(opening + rows + closing + paid), strict=True))
    return pa.table([pa.array(column, field.type) for column, field in zip(columns, STATEMENT_SCHEMA,
                                                                            strict=True)],
                    schema=STATEMENT_SCHEMA)

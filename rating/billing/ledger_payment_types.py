"""The shapes of money coming in and going out of the dues ledger.

A payment is recorded once under its idempotency key, numbered as a receipt
(one series per financial year, rating.billing.numbering) and allocated in
the same transaction by the site's rule (rating.billing.allocation): each
allocation an entry that pays off an open item, what is left an advance.
Nothing is ever changed afterwards: a bounced cheque or a gateway's
chargeback is a reversal (new entries undoing the allocations), a refund a
request, a decision and a payout, each its own row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from rating.billing.allocation import AllocationRule
from rating.billing.numbering import Numbering


class Method(StrEnum):
    CASH = "cash"
    CHEQUE = "cheque"
    TRANSFER = "transfer"  # NEFT/RTGS/IMPS/UPI to the society's account: its UTR as reference
    GATEWAY = "gateway"


class Flag(StrEnum):
    """Why staff should look at a payment; the money is recorded all the same."""

    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"  # no dues or documents: kept in suspense
    UNKNOWN_BILL = "UNKNOWN_BILL"
    BILL_CANCELLED = "BILL_CANCELLED"
    BILL_SETTLED = "BILL_SETTLED"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"  # not what the named bill still owes
    ADVANCE = "ADVANCE"  # more than all dues: the rest kept as an advance


@dataclass(frozen=True)
class PaymentRequest:
    """Money received for an account. `bill` names the bill the payer means
    (its items are paid first); `tag` keeps an advance for one head.

    `strict` (a gateway's payment): allocated only when it pays exactly what
    `bill` still owes (or, naming no bill, any known account); otherwise
    recorded unallocated (held, or in suspense for an unknown account) and
    flagged. Not strict (staff at the counter): an unknown account or bill is
    an error, a cancelled or settled bill flagged and the money allocated by
    the rule. The payload of the key is what was paid (account, method,
    amount, date, references, bill, tag), not the flags."""

    key: str
    site_id: str
    account_id: str
    method: Method
    amount_minor: int
    received_on: dt.date
    actor: str
    numbering: Numbering = field(default_factory=Numbering)
    rule: AllocationRule = field(default_factory=AllocationRule)
    reference: str = ""  # cheque number, UTR, gateway payment id
    bank: str = ""  # a cheque's bank
    instrument_date: dt.date | None = None  # a cheque's date
    bill: str = ""
    tag: str = ""
    strict: bool = False
    note: str = ""


@dataclass(frozen=True)
class Payment:
    """A recorded payment (its receipt), as stored: immutable."""

    receipt: str
    site_id: str
    account_id: str
    method: str
    amount_minor: int
    received_on: dt.date
    reference: str
    details: dict  # bank, instrument date, bill, note, flags
    tag: str
    suspense: bool
    seq: int
    actor: str


@dataclass(frozen=True)
class AllocationRow:
    """One allocation: `amount_minor` of `receipt` (or of the credit item
    `credit_ref`) paid off the item (bill, head, kind, due date); negative
    when a reversal undid it."""

    seq: int
    account_id: str
    receipt: str
    credit_ref: str
    bill_ref: str
    head: str
    kind: str
    due_date: dt.date
    amount_minor: int
    on: dt.date


@dataclass(frozen=True)
class ReversalRequest:
    """Undo a payment: a bounced cheque (`kind="bounce"`, with an optional
    charge billed by a debit note carried to the next bill), a gateway
    refund or chargeback."""

    key: str
    site_id: str
    receipt: str
    kind: str  # bounce | refund | chargeback
    on: dt.date
    reason: str
    actor: str
    numbering: Numbering = field(default_factory=Numbering)
    charge_minor: int = 0
    charge_head: str = "bounce_charge"


@dataclass(frozen=True)
class ClaimRequest:
    """A resident's "I have paid": recorded, no money until staff confirm it."""

    key: str
    site_id: str
    account_id: str
    amount_minor: int
    paid_on: dt.date
    method: Method
    reference: str
    actor: str
    note: str = ""


@dataclass(frozen=True)
class Claim:
    claim_id: str
    site_id: str
    account_id: str
    amount_minor: int
    paid_on: dt.date
    method: str
    reference: str
    status: str  # open | confirmed | rejected
    receipt: str  # confirmed: the payment's receipt
    reason: str  # rejected: why
    actor: str  # who claimed


class RefundSource(StrEnum):
    ADVANCE = "advance"  # the account's unallocated credit
    DEPOSIT = "deposit"  # a refundable head's paid deposit, once its term ended


@dataclass(frozen=True)
class RefundRequest:
    """Ask to pay money back. A deposit names its head and the day its term
    ended; an advance may be refunded within `deadline_days` of the payment it
    came from, a deposit within `deadline_days` of its end."""

    key: str
    site_id: str
    account_id: str
    amount_minor: int
    source: RefundSource
    reason: str
    method: str  # how it is to be paid: transfer, cheque, cash
    on: dt.date
    actor: str
    deadline_days: int
    head: str = ""  # a deposit's head
    deposit_end: dt.date | None = None
    refundable_heads: frozenset[str] = frozenset()  # the heads the site marks refundable (deposits)


@dataclass(frozen=True)
class Refund:
    refund_id: str
    site_id: str
    account_id: str
    amount_minor: int
    source: str
    head: str
    reason: str
    method: str
    status: str  # requested | approved | rejected | paid
    requested_by: str
    decided_by: str
    decision_reason: str
    paid_reference: str
    requested_on: dt.date


@dataclass(frozen=True)
class StatementRecord:
    """An imported bank statement as the ledger keeps it (its identity and balances)."""

    account: str
    statement_id: str
    sequence: str  # "" when the format has none
    digest: str
    source: str
    sequence_key: tuple[int, ...] | None
    opening_minor: int
    closing_minor: int
    first_date: dt.date | None
    last_date: dt.date | None


@dataclass(frozen=True)
class BankLine:
    """A booked line of an imported statement and what reconciliation made of it:
    `status` matched | review | unmatched | resolved | dismissed."""

    line_id: str  # "<statement>#<entry index>"
    booking_date: dt.date
    amount_minor: int
    reference: str
    text: str
    status: str
    reason: str  # review: why (AMOUNT_MISMATCH, SEVERAL_CANDIDATES, ...); dismissed: the staff's reason
    candidates: tuple[str, ...]  # review: the items it could be
    receipt: str  # matched or resolved: the receipt(s) it was booked as


@dataclass(frozen=True)
class BankBooking:
    """A bank import in one transaction: the statements, every line's outcome,
    and the payments the matched lines record."""

    key: str
    site_id: str
    file: str
    actor: str
    statements: tuple[StatementRecord, ...]
    lines: tuple[BankLine, ...]
    payments: tuple[tuple[str, PaymentRequest], ...]  # (line id, the payment it records)

"""The dues ledger interface: what a site's units owe, per account and charge head.

Append-only. Every write is one operation under an idempotency key, committed
in one transaction with everything that must advance with it: its entries
(one immutable row per account, head and line, integer minor units), its
documents (bills, credit and debit notes, numbered inside the transaction so
a rolled back write leaves no gap in a series) and an audit row naming the
site and the acting user or process. A retry with the same key and payload
returns the first result and writes nothing; the same key with another
payload is refused (DuesConflict). A balance is the sum of its entries;
nothing is ever updated or deleted.

Backends: `rating.billing.ledger_sqlite` (the same file as the prepaid
ledger) and `rating.billing.ledger_postgres` (the same schema). Both pass
tests/test_billing_ledger_contract.py. The rows both write are built once,
in `rating.billing.ledger_rows`.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from rating.billing.allocation import AllocationRule
from rating.billing.documents import BillLine, DraftBill, DuesItem
from rating.billing.interest import Paid
from rating.billing.ledger_payment_types import (
    AllocationRow,
    BankBooking,
    BankLine,
    Claim,
    ClaimRequest,
    Payment,
    PaymentRequest,
    Refund,
    RefundRequest,
    ReversalRequest,
    StatementRecord,
)
from rating.billing.numbering import DocType, Numbering
from rating.errors import RatingError


class DuesConflict(RatingError):
    """An idempotency key came back with another payload; nothing was written."""

    reason = "IDEMPOTENCY_CONFLICT"


class CycleOverlap(RatingError):
    """A cycle's days overlap those of an issued cycle of the site; nothing was written."""

    reason = "CYCLE_OVERLAP"


class SeriesFull(RatingError):
    """A number series has no serial left for the year; nothing was written."""

    reason = "LIMIT_EXCEEDED"


class NotFound(RatingError):
    reason = "NOT_FOUND"


@dataclass(frozen=True)
class Entry:
    """One dues entry: signed minor units owed (> 0) or credited (< 0) under a
    head, falling due on `due_date`, belonging to the document or import `ref`."""

    account_id: str
    head: str
    kind: str  # a LineKind value: what interest and taxes may bear
    amount_minor: int
    due_date: dt.date
    ref: str
    note: str = ""


@dataclass(frozen=True)
class IssueBatch:
    """A cycle's bills to issue at once: the run's days, its drafts, its rules."""

    key: str  # idempotency key: one per (site, cycle), `issue:<site>:<cycle>`
    site_id: str
    cycle_id: str
    period_start: dt.date
    period_end: dt.date
    bill_date: dt.date
    bills: Sequence[DraftBill]
    numbering: Numbering
    actor: str
    rules_text: str = ""  # the billing rules the drafts were computed with (audited when new)
    allocation: AllocationRule | None = None  # how advances pay the new bills (None: the default rule)


@dataclass(frozen=True)
class NoteRequest:
    """A credit or debit note on an account. Amounts are magnitudes (> 0); a
    credit note credits them. `corrects` names the bill it corrects (its
    entries then fall due with that bill's items), or "" for none."""

    key: str
    site_id: str
    doc_type: DocType
    account_id: str
    lines: tuple[BillLine, ...]
    note_date: dt.date
    due_date: dt.date
    reason: str
    actor: str
    numbering: Numbering
    corrects: str = ""


@dataclass(frozen=True)
class DuesPost:
    """Entries without a document (imported dues): one operation, one audit row."""

    key: str
    kind: str  # e.g. "import"
    site_id: str
    actor: str
    entries: tuple[Entry, ...]
    detail: str  # what the audit row says (the file, its sha-256, how many rows)


@dataclass(frozen=True)
class OpResult:
    """The first result of an operation, replayed to every retry."""

    seq: int
    key: str
    kind: str
    summary: dict  # JSON: what was written (numbers, counts, totals)
    replayed: bool = False


@dataclass(frozen=True)
class Document:
    """An issued bill or note, as stored: immutable."""

    number: str
    doc_type: DocType
    site_id: str
    account_id: str
    cycle_id: str  # the cycle of a bill; "" for a note
    issued_on: dt.date
    due_date: dt.date
    total_minor: int  # what the document adds to the dues (a credit note: negative)
    body: dict  # JSON: lines, anomalies, bill_to, period, reason
    corrects: str  # a note: the bill it corrects
    cancels: bool  # a credit note that fully reverses `corrects`
    seq: int
    actor: str


@dataclass(frozen=True)
class AccountEntry:
    """An entry of one account as a statement reads it: the operation that
    wrote it (`op_kind`: issue, note, cancel, import, and later kinds) and
    the day it counts from: its document's date, or for an entry without a
    document the day (UTC) its operation was written."""

    seq: int
    op_kind: str
    on: dt.date
    head: str
    kind: str
    amount_minor: int
    due_date: dt.date
    ref: str
    note: str
    document: str  # the bill or note that wrote it; "" for none


@dataclass(frozen=True)
class IssuedCycle:
    site_id: str
    cycle_id: str
    period_start: dt.date
    period_end: dt.date
    seq: int


@dataclass(frozen=True)
class AuditRow:
    audit_id: int
    site_id: str
    actor: str
    at_us: int
    action: str  # issue | note | cancel | import | rules | pay | reverse | claim | refund ...
    subject: str  # the cycle, document, file or rules hash it concerns
    detail: str


@dataclass(frozen=True)
class ReportRows:
    """What the reports (rating.reports) read of a site, as plain rows, dates
    as dates. `entries`: (account, ref, due_date, interest, on, amount_minor)
    summed per day: `interest` 1 for interest and late-fee entries, 0 for the
    rest; `on` the day an entry counts from (its document's date, else its
    allocation's date, else, for imported dues, the day, UTC, they were
    written). `credits`: (account, on, amount_minor) of unallocated money
    (dues_credits) summed per day. `receipts`: (account, receipt, method,
    received_on, amount_minor, reversed_on or None; suspense payments
    left out). `bills`: (number, account, cycle_id, issued_on, due_date,
    total_minor, cancelled)."""

    entries: list[tuple]
    credits: list[tuple]
    receipts: list[tuple]
    bills: list[tuple]


class DuesLedger(ABC):
    name = "dues"

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the dues tables if they are missing."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def issue(self, batch: IssueBatch) -> OpResult:
        """Issue a cycle's bills atomically: numbers, documents, entries, the
        notes each bill carries, audit. Raises CycleOverlap, SeriesFull or
        DuesConflict with nothing written; an issued cycle returns its first
        result (replayed)."""

    @abstractmethod
    async def note(self, request: NoteRequest) -> OpResult:
        """Issue a credit or debit note (numbered, audited)."""

    @abstractmethod
    async def cancel(self, site_id: str, number: str, *, key: str, on: dt.date, reason: str, actor: str,
                     numbering: Numbering) -> OpResult:
        """Cancel a bill: a credit note that reverses every entry it posted.
        The bill keeps its number; a bill is cancelled once."""

    @abstractmethod
    async def post(self, post: DuesPost) -> OpResult:
        """Append entries without a document (imported dues)."""

    @abstractmethod
    async def find(self, key: str) -> OpResult | None: ...

    @abstractmethod
    async def balances(self, site_id: str, account_id: str = "") -> dict[tuple[str, str], int]:
        """(account, head) -> sum of its entries, for every pair with entries."""

    @abstractmethod
    async def open_items(self, site_id: str) -> dict[str, list[DuesItem]]:
        """Per account, what is still owed per (head, kind, document, due date):
        the entries summed, the pairs that net to zero left out. What a draft
        bill's arrears and interest read."""

    @abstractmethod
    async def account_entries(self, site_id: str, account_id: str) -> list[AccountEntry]:
        """Every entry of an account, in the order written (statements)."""

    @abstractmethod
    async def document(self, site_id: str, number: str) -> Document | None: ...

    @abstractmethod
    async def documents(self, site_id: str, *, cycle_id: str = "", account_id: str = "",
                        limit: int = 1000, offset: int = 0) -> list[Document]:
        """Documents in number order (series, then serial), from the `offset`-th (a page)."""

    @abstractmethod
    async def carried(self, site_id: str, bill_number: str) -> list[str]:
        """The notes (numbers) a bill carries: those issued since the account's last bill."""

    @abstractmethod
    async def cycles(self, site_id: str) -> list[IssuedCycle]: ...

    @abstractmethod
    async def audit(self, site_id: str, *, limit: int = 1000) -> list[AuditRow]: ...

    @abstractmethod
    async def report_rows(self, site_id: str) -> ReportRows:
        """Every entry, credit, receipt and bill of the site, dated (rating.reports)."""

    @abstractmethod
    async def counts(self) -> dict[str, int]:
        """Rows per dues table, for reports and tests."""

    # ------------------------------------------------------------ payments (ledger_payment_types)

    @abstractmethod
    async def pay(self, request: PaymentRequest) -> OpResult:
        """Record a payment, number its receipt, allocate it (one transaction).
        The summary: receipt, amount_minor, allocated_minor, advance_minor,
        allocations [[bill, head, kind, amount]], flags, held, suspense."""

    @abstractmethod
    async def pay_many(self, requests: list[PaymentRequest]) -> list[OpResult]:
        """`pay` of many payments of one site in one transaction, in order
        (a month's collections, a bank import): all or nothing."""

    @abstractmethod
    async def reverse(self, request: ReversalRequest) -> OpResult:
        """Undo a payment once (bounce, gateway refund, chargeback) by new entries."""

    @abstractmethod
    async def claim(self, request: ClaimRequest) -> OpResult:
        """Record a resident's claim to have paid (no money moves)."""

    @abstractmethod
    async def confirm_claim(self, key: str, site_id: str, claim_id: str, *, actor: str,
                            numbering: Numbering, rule: AllocationRule) -> OpResult:
        """Staff confirm a claim: the payment is recorded and allocated."""

    @abstractmethod
    async def reject_claim(self, key: str, site_id: str, claim_id: str, *, reason: str,
                           actor: str) -> OpResult: ...

    @abstractmethod
    async def request_refund(self, request: RefundRequest) -> OpResult:
        """Ask for a refund, checked against what is refundable inside the transaction."""

    @abstractmethod
    async def decide_refund(self, key: str, site_id: str, refund_id: str, *, approve: bool, reason: str,
                            actor: str, approvers: frozenset[str]) -> OpResult:
        """Approve or reject by an approver who did not ask for it (approval re-checks the limit)."""

    @abstractmethod
    async def pay_refund(self, key: str, site_id: str, refund_id: str, *, method: str, reference: str,
                         on: dt.date, actor: str) -> OpResult:
        """Record an approved refund's payout: the money leaves the account's credit."""

    @abstractmethod
    async def payments(self, site_id: str, account_id: str = "", *, receipt: str = "",
                       limit: int = 1000, offset: int = 0) -> list[Payment]:
        """Receipts in number order (of an account, or the one `receipt`), `limit` of them
        after the first `offset`."""

    @abstractmethod
    async def allocations(self, site_id: str, account_id: str = "", *,
                          receipt: str = "") -> list[AllocationRow]:
        """What paid what, in the order written."""

    @abstractmethod
    async def advances(self, site_id: str, account_id: str = "") -> dict[tuple[str, str], int]:
        """(account, tag) -> unallocated money of its payments (tag "": general)."""

    @abstractmethod
    async def paid_late(self, site_id: str, until: dt.date) -> dict[str, list[Paid]]:
        """Per account, what payments paid of dues after their due date, up to
        `until` (a reversed payment as never made): interest's declining balance."""

    @abstractmethod
    async def claims(self, site_id: str, *, status: str = "", account_id: str = "", limit: int = 1_000_000,
                     offset: int = 0) -> list[Claim]:
        """Claims in claim order (of one status: open, confirmed, rejected; of one account), a page."""

    @abstractmethod
    async def refunds(self, site_id: str, *, account_id: str = "", limit: int = 1_000_000,
                      offset: int = 0) -> list[Refund]:
        """Refunds in request order with their decisions and payouts, a page."""

    # ------------------------------------------------------------ staff corrections (ledger_staff)

    @abstractmethod
    async def reallocate(self, key: str, site_id: str, account_id: str = "", *, on: dt.date, actor: str,
                         rule: AllocationRule) -> OpResult:
        """Allocate again the unallocated money (advances, held payments) of an account, or of
        every account of the site, by `rule`. Summary: accounts, allocated_minor, allocations
        [[account, receipt, bill, head, amount]]."""

    @abstractmethod
    async def assign_suspense(self, key: str, site_id: str, receipt: str, *, account_id: str, bill: str,
                              on: dt.date, actor: str, numbering: Numbering,
                              rule: AllocationRule) -> OpResult:
        """Give a payment kept in suspense to its account: the suspense receipt closed, the money
        booked as the account's payment (a new receipt, `from_receipt` naming the first)."""

    @abstractmethod
    async def refund_part(self, key: str, site_id: str, receipt: str, amount_minor: int, *, on: dt.date,
                          reason: str, actor: str) -> OpResult:
        """Give back part of a payment (a gateway's partial refund): its unallocated money first,
        then its allocations undone newest due first; never more in all than the payment."""

    # ------------------------------------------------------------ bank statements (ledger_bank)

    @abstractmethod
    async def statements(self, site_id: str) -> list[StatementRecord]:
        """Every bank statement imported into the site."""

    @abstractmethod
    async def book_statements(self, booking: BankBooking) -> OpResult:
        """Record statements, their lines' outcomes and the payments of the matched ones, at once."""

    @abstractmethod
    async def bank_lines(self, site_id: str, *, status: str = "") -> list[BankLine]: ...

    @abstractmethod
    async def resolve_bank_line(self, key: str, site_id: str, line_id: str, *, account_id: str, bill: str,
                                actor: str, numbering: Numbering, rule: AllocationRule) -> OpResult:
        """Staff book a line waiting in review as a payment of `account_id` (for `bill`, when given)."""

    @abstractmethod
    async def dismiss_bank_line(self, key: str, site_id: str, line_id: str, *, reason: str,
                                actor: str) -> OpResult:
        """Staff set a waiting line aside (not a payment of a unit), with the reason."""

"""Reconcile a bank statement file against the dues ledger, in one go.

The file is read and checked (rating.payments.bank_import), its statements
admitted against those the ledger imported before (a re-import changes
nothing), and every booked line matched conservatively (rating.payments.
matching) to what the books expect: the open bills (a credit that pays one
exactly is recorded as a transfer paying it) and the transfers and cheques
recorded by staff but not yet seen in the bank (matched, nothing new is
recorded). Ambiguous lines wait in the review queue, unmatched ones are
listed; all of it is written in one ledger transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from rating.billing.ledger import DuesLedger, OpResult
from rating.billing.ledger_payment_types import BankBooking, BankLine, Method, PaymentRequest, StatementRecord
from rating.billing.numbering import DocType, Numbering
from rating.payments.bank_import import STATEMENT_FILE_BYTES_MAX, parse_statements, read_statements
from rating.payments.errors import StatementError
from rating.payments.matching import Line, OpenItem, Reconciliation, reconcile
from rating.payments.settings import PaymentSettings
from rating.payments.statement import Statement, StatementIdentity
from rating.payments.statement_registry import MemoryStatementRegistry, StatementMark, admit

BILL, RECEIPT = "bill:", "receipt:"
ITEMS_MAX = 10_000_000  # every document and receipt of a site is read


@dataclass(frozen=True)
class BankImport:
    result: OpResult | None  # None: every statement was imported before
    known: int  # statements imported before, skipped
    reconciliation: Reconciliation | None


async def import_bank_file(ledger: DuesLedger, path: str | Path, *, site_id: str, actor: str,
                           settings: PaymentSettings, numbering: Numbering, format: str | None = None
                           ) -> BankImport:
    """Read, check, match and book one statement file (see the module text)."""
    path = Path(path)
    statements = read_statements(path, format=format, layout=settings.bank_csv)
    return await _book_new(ledger, statements, file=path.name, site_id=site_id, actor=actor,
                           settings=settings, numbering=numbering)


async def import_bank_data(ledger: DuesLedger, data: bytes, *, file: str, site_id: str, actor: str,
                           settings: PaymentSettings, numbering: Numbering, format: str | None = None
                           ) -> BankImport:
    """`import_bank_file` of a file's bytes (sent over gRPC); `file` names it in errors."""
    if len(data) > STATEMENT_FILE_BYTES_MAX:
        raise StatementError(f"larger than {STATEMENT_FILE_BYTES_MAX} bytes", file=file,
                             reason="LIMIT_EXCEEDED")
    statements = parse_statements(data, file=file, format=format, layout=settings.bank_csv)
    return await _book_new(ledger, statements, file=file, site_id=site_id, actor=actor, settings=settings,
                           numbering=numbering)


async def _book_new(ledger: DuesLedger, statements: list[Statement], *, file: str, site_id: str, actor: str,
                    settings: PaymentSettings, numbering: Numbering) -> BankImport:
    registry = MemoryStatementRegistry()
    registry.add([_mark(r) for r in await ledger.statements(site_id)])
    admission = admit(statements, registry, file=file)
    if not admission.new:
        return BankImport(None, len(admission.known), None)
    result = reconcile(admission.new, await expected_items(ledger, site_id))
    booking = _booking(result, admission.new, site_id=site_id, file=file, actor=actor,
                       settings=settings, numbering=numbering)
    return BankImport(await ledger.book_statements(booking), len(admission.known), result)


async def expected_items(ledger: DuesLedger, site_id: str) -> list[OpenItem]:
    """What a bank credit may be: each bill (open, or settled so a line naming it
    goes to review) and each transfer or cheque recorded but not yet seen in the bank."""
    owed: dict[str, int] = {}
    for items in (await ledger.open_items(site_id)).values():
        for item in items:
            owed[item.bill_ref] = owed.get(item.bill_ref, 0) + item.amount_minor
    found = []
    for doc in await ledger.documents(site_id, limit=ITEMS_MAX):
        if doc.doc_type is DocType.BILL:
            left = owed.get(doc.number, 0)
            found.append(OpenItem(BILL + doc.number, doc.number, left if left > 0 else doc.total_minor,
                                  doc.account_id, doc.due_date, settled=left <= 0))
    seen = {r for line in await ledger.bank_lines(site_id) for r in line.receipt.split()}
    for p in await ledger.payments(site_id, limit=ITEMS_MAX):
        if p.method in (Method.TRANSFER, Method.CHEQUE) and p.receipt not in seen and not p.suspense:
            found.append(OpenItem(RECEIPT + p.receipt, p.reference or p.receipt, p.amount_minor, p.account_id,
                                  p.received_on))
    return found


def _booking(result: Reconciliation, statements: list[Statement], *, site_id: str, file: str, actor: str,
             settings: PaymentSettings, numbering: Numbering) -> BankBooking:
    lines, payments = [], []
    for match in result.matched:
        line_id = _line_id(match.line)
        receipts = [i.item_id.removeprefix(RECEIPT) for i in match.items if i.item_id.startswith(RECEIPT)]
        for item in match.items:
            if item.item_id.startswith(BILL):
                payments.append((line_id, PaymentRequest(
                    f"bank:{site_id}:{line_id}:{item.reference}", site_id, item.unit, Method.TRANSFER,
                    item.amount_minor, match.line.entry.booking_date, actor, numbering, settings.allocation,
                    reference=_reference(match.line), bill=item.reference, note=f"bank line {line_id}")))
        lines.append(_line(match.line, "matched", match.basis, (), " ".join(receipts)))
    for review in result.review:
        lines.append(_line(review.line, "review", f"{review.reason}: {review.note}",
                           tuple(i.item_id for i in review.candidates), ""))
    for unmatched in result.unmatched_credits + result.unmatched_debits:
        lines.append(_line(unmatched, "unmatched", "credit" if unmatched.entry.is_credit else "debit", (),
                           ""))
    digest = hashlib.sha256("".join(sorted(s.digest() for s in statements)).encode()).hexdigest()[:32]
    return BankBooking(f"bank:{site_id}:{digest}", site_id, file, actor,
                       tuple(_record(s) for s in statements), tuple(lines), tuple(payments))


def _line_id(line: Line) -> str:
    return f"{line.statement}#{line.entry.index}"


def _reference(line: Line) -> str:
    r = line.entry.references
    return r.transaction_id or r.end_to_end_id or r.bank_reference or r.creditor_reference or ""


def _line(line: Line, status: str, reason: str, candidates: tuple[str, ...], receipt: str) -> BankLine:
    return BankLine(_line_id(line), line.entry.booking_date, line.entry.amount_minor, _reference(line),
                    line.entry.references.remittance or "", status, reason, candidates, receipt)


def _record(s: Statement) -> StatementRecord:
    return StatementRecord(s.identity.account, s.identity.statement_id, s.identity.sequence or "", s.digest(),
                           s.source, s.sequence_key, s.opening_minor, s.closing_minor, s.opening_date,
                           s.closing_date)


def _mark(r: StatementRecord) -> StatementMark:
    identity = StatementIdentity(r.account, r.statement_id, r.sequence or None)
    return StatementMark(identity, r.digest, r.source, r.sequence_key, r.opening_minor, r.closing_minor,
                         r.first_date, r.last_date)

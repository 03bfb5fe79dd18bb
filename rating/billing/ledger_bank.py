"""Bank statements in the dues ledger: what was imported, what each line became.

An import is one transaction: the statements' records (so a re-import is
known), every booked line with its outcome (matched, to review, unmatched),
and the payments its matched lines record (rating.billing.ledger_payments).
A line waiting in review is resolved by staff (booked as a payment of an
account) or dismissed with a reason; each decision is a new row.
"""

from __future__ import annotations

import json

from rating.billing import ledger_rows as rows
from rating.billing.allocation import AllocationRule
from rating.billing.ledger import NotFound, OpResult
from rating.billing.ledger_payment_types import BankBooking, BankLine, Method, PaymentRequest, StatementRecord
from rating.billing.ledger_payments import payment_payload
from rating.billing.ledger_payments_more import SqlMoneyLedger
from rating.billing.ledger_sql import Tx
from rating.billing.numbering import Numbering
from rating.errors import InputError

_LINE_COLUMNS = ("site_id", "line_id", "event", "booking_date", "amount_minor", "reference", "text", "status",
                 "reason", "candidates", "receipt", "seq", "actor")
_STATEMENT_COLUMNS = ("site_id", "account", "statement_id", "sequence", "digest", "source", "sequence_key",
                      "opening_minor", "closing_minor", "first_date", "last_date", "seq")


class SqlBankLedger(SqlMoneyLedger):
    async def statements(self, site_id: str) -> list[StatementRecord]:
        async with self._reading() as tx:
            found = await tx.fetch(f"SELECT {', '.join(_STATEMENT_COLUMNS[1:-1])} FROM dues_statements "
                                   "WHERE site_id = $1", site_id)
        return [StatementRecord(a, s, q, d, src, tuple(json.loads(k)) if k != "null" else None, int(o),
                                int(c),
                                rows.day(f) if f else None, rows.day(la) if la else None)
                for a, s, q, d, src, k, o, c, f, la in found]

    async def book_statements(self, booking: BankBooking) -> OpResult:
        rows.check_key(booking.key)
        payload = rows.sha256(rows.canonical(["bank", booking.site_id, [
            [s.account, s.statement_id, s.sequence, s.digest] for s in booking.statements]]))
        payments = [p for _, p in booking.payments]
        payloads = [payment_payload(p) for p in payments]
        async with self._writing(booking.site_id) as tx:
            first = await self._replay(tx, booking.key, "bank_import", payload)
            if first is not None:
                return first
            await _check_new(tx, booking)
            results = await self._pay_in(tx, booking.site_id, payments, payloads) if payments else []
            receipts: dict[str, list[str]] = {}
            for (line_id, _), result in zip(booking.payments, results, strict=True):
                receipts.setdefault(line_id, []).append(result.summary["receipt"])
            counts: dict[str, int] = {}
            for line in booking.lines:
                counts[line.status] = counts.get(line.status, 0) + 1
            summary = {"file": booking.file, "statements": len(booking.statements), "lines": counts,
                       "payments": len(payments)}
            seq = await self._op(tx, booking.key, "bank_import", booking.site_id, booking.actor, payload,
                                 summary)
            await tx.insert_many("dues_statements", _STATEMENT_COLUMNS, [
                (booking.site_id, s.account, s.statement_id, s.sequence, s.digest, s.source,
                 json.dumps(list(s.sequence_key) if s.sequence_key is not None else None), s.opening_minor,
                 s.closing_minor, s.first_date.isoformat() if s.first_date else "",
                 s.last_date.isoformat() if s.last_date else "", seq) for s in booking.statements])
            await tx.insert_many("dues_bank_lines", _LINE_COLUMNS, [
                _line_row(booking.site_id, line, 0, " ".join(receipts.get(line.line_id, [])) or line.receipt,
                          seq, booking.actor) for line in booking.lines])
            await self._audit(tx, booking.site_id, booking.actor, "bank_import", booking.file,
                              rows.canonical(summary), seq)
        return OpResult(seq, booking.key, "bank_import", summary)

    async def bank_lines(self, site_id: str, *, status: str = "") -> list[BankLine]:
        async with self._reading() as tx:
            found = await _lines(tx, site_id, "")
        return [line for line in found.values() if not status or line.status == status]

    async def resolve_bank_line(self, key: str, site_id: str, line_id: str, *, account_id: str, bill: str,
                                actor: str, numbering: Numbering, rule: AllocationRule) -> OpResult:
        async with self._writing(site_id) as tx:
            line, event = await _open_line(tx, site_id, line_id)
            request = PaymentRequest(key, site_id, account_id, Method.TRANSFER, line.amount_minor,
                                     line.booking_date, actor, numbering, rule, reference=line.reference,
                                     bill=bill, note=f"bank line {line_id}")
            payload = payment_payload(request)
            first = await self._replay(tx, key, "pay", payload)
            if first is not None:
                return first
            _check_waiting(line)
            (result,) = await self._pay_in(tx, site_id, [request], [payload])
            resolved = BankLine(line.line_id, line.booking_date, line.amount_minor, line.reference, line.text,
                                "resolved", line.reason, line.candidates, result.summary["receipt"])
            await tx.insert_many("dues_bank_lines", _LINE_COLUMNS,
                                 [_line_row(site_id, resolved, event + 1, resolved.receipt, result.seq,
                                            actor)])
        return result

    async def dismiss_bank_line(self, key: str, site_id: str, line_id: str, *, reason: str,
                                actor: str) -> OpResult:
        rows.check_key(key)
        if not reason.strip():
            raise InputError("dismissing a line needs its reason", where=line_id)
        payload = rows.sha256(rows.canonical(["dismiss", site_id, line_id, reason]))
        async with self._writing(site_id) as tx:
            first = await self._replay(tx, key, "bank_dismiss", payload)
            if first is not None:
                return first
            line, event = await _open_line(tx, site_id, line_id)
            _check_waiting(line)
            summary = {"line": line_id, "status": "dismissed"}
            seq = await self._op(tx, key, "bank_dismiss", site_id, actor, payload, summary)
            dismissed = BankLine(line.line_id, line.booking_date, line.amount_minor, line.reference,
                                 line.text,
                                 "dismissed", reason, line.candidates, "")
            await tx.insert_many("dues_bank_lines", _LINE_COLUMNS,
                                 [_line_row(site_id, dismissed, event + 1, "", seq, actor)])
            await self._audit(tx, site_id, actor, "bank_dismiss", line_id, reason, seq)
        return OpResult(seq, key, "bank_dismiss", summary)


def _line_row(site_id: str, line: BankLine, event: int, receipt: str, seq: int, actor: str) -> tuple:
    return (site_id, line.line_id, event, line.booking_date, line.amount_minor, line.reference, line.text,
            line.status, line.reason, json.dumps(list(line.candidates)), receipt, seq, actor)


async def _lines(tx: Tx, site_id: str, line_id: str) -> dict[str, BankLine]:
    """Each line as its latest row leaves it, in import order."""
    sql = f"SELECT {', '.join(_LINE_COLUMNS[1:11])} FROM dues_bank_lines WHERE site_id = $1"
    args = [site_id]
    if line_id:
        sql += " AND line_id = $2"
        args.append(line_id)
    lines: dict[str, BankLine] = {}
    for lid, _, day, amount, ref, text, status, reason, candidates, receipt in sorted(
            await tx.fetch(sql + " ORDER BY seq, event", *args), key=lambda r: r[1]):
        lines[lid] = BankLine(lid, rows.day(day), int(amount), ref, text, status, reason,
                              tuple(json.loads(candidates)), receipt)
    return lines


async def _open_line(tx: Tx, site_id: str, line_id: str) -> tuple[BankLine, int]:
    found = await tx.fetch("SELECT MAX(event) FROM dues_bank_lines WHERE site_id = $1 AND line_id = $2",
                           site_id, line_id)
    if not found or found[0][0] is None:
        raise NotFound(f"no bank line {line_id!r} in site {site_id!r}; nothing was written", where=line_id)
    return (await _lines(tx, site_id, line_id))[line_id], int(found[0][0])


def _check_waiting(line: BankLine) -> None:
    if line.status not in ("review", "unmatched"):
        raise InputError(f"bank line {line.line_id} is {line.status}; nothing was written",
                         where=line.line_id,
                         reason="LINE_DECIDED")


async def _check_new(tx: Tx, booking: BankBooking) -> None:
    for s in booking.statements:
        found = await tx.fetch("SELECT seq FROM dues_statements WHERE site_id = $1 AND account = $2 "
                               "AND statement_id = $3 AND sequence = $4", booking.site_id, s.account,
                               s.statement_id, s.sequence)
        if found:
            raise InputError(f"statement {s.account}/{s.statement_id} was imported meanwhile (operation "
                             f"#{found[0][0]}); nothing was written", where=booking.file,
                             reason="STATEMENT_CONFLICT")
